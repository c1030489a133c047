import neostandard from 'neostandard'

// The style the Fastify and mercurius projects use, with TypeScript rules.
export default [
  ...neostandard({
    ts: true,
    // clients/openapi.ts is generated from openapi.yaml (`npm run gen:types`), in openapi-typescript's style.
    ignores: ['dist/**', 'node_modules/**', 'src/dashboard/**/*.js', 'bench/results/**', 'clients/openapi.ts']
  }),
  {
    rules: {
      // `void promise` marks a deliberately un-awaited call; TypeScript's checks rely on it.
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
