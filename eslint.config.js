import neostandard from 'neostandard'

// The style the Fastify and mercurius projects use, with TypeScript rules.
export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', 'src/dashboard/**/*.js', 'bench/results/**']
  }),
  {
    rules: {
      // `void promise` marks a deliberately un-awaited call; TypeScript's checks rely on it.
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
