import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import mercurius from 'mercurius'
import { SCHEMA_PATH } from '../../src/graphql/index.js'
import { buildResolvers } from '../../src/graphql/resolvers.js'
import { fixtureTasks } from '../fixtures.js'
import { serve } from './child.js'

/**
 * The GraphQL anchor: bare mercurius with JIT on the gateway's own schema,
 * queries answered from a Map. Scalars and Task field resolvers are the
 * gateway's, so the difference measured is the loader, cache and plumbing.
 */
const tasks = fixtureTasks()
const resolvers = buildResolvers()
const app = Fastify({ logger: false })
await app.register(mercurius, {
  schema: readFileSync(SCHEMA_PATH, 'utf8'),
  resolvers: {
    ...resolvers,
    Query: {
      task: (_root: unknown, args: { id: string }) => tasks.get(args.id) ?? null,
      tasks: (_root: unknown, args: { ids: string[] }) => args.ids.map((id) => tasks.get(id) ?? null)
    }
  },
  path: '/graphql',
  graphiql: false,
  jit: 1
})
const url = await app.listen({ port: 0, host: '127.0.0.1' })
serve(url, {}, () => app.close())
