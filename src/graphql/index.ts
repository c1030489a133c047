import { readFileSync } from 'node:fs'
import fp from 'fastify-plugin'
import mercurius from 'mercurius'
import type { FastifyInstance } from 'fastify'
import { buildResolvers } from './resolvers.js'

/** schema/schema.graphql is the single source of truth for the GraphQL API. */
export const SCHEMA_PATH = new URL('../../schema/schema.graphql', import.meta.url)

/**
 * The GraphQL API at /graphql (POST and GET), JIT-compiled after a query's
 * first run. Every resolver reads through the task loader.
 */
export const graphql = fp(async function graphql (app: FastifyInstance) {
  await app.register(mercurius, {
    schema: readFileSync(SCHEMA_PATH, 'utf8'),
    resolvers: buildResolvers(),
    path: '/graphql',
    graphiql: false,
    jit: 1
  })

  // Tasks served stale (upstream failed) are listed in the response's extensions.
  app.graphql.addHook('onResolution', async (execution, ctx) => {
    if (ctx.staleTasks !== undefined) {
      (execution as { extensions?: Record<string, unknown> }).extensions = { stale: ctx.staleTasks }
    }
  })
}, { name: 'graphql', dependencies: ['gateway'] })
