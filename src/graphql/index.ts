import { readFileSync } from 'node:fs'
import fp from 'fastify-plugin'
import mercurius from 'mercurius'
import type { FastifyInstance, onResponseHookHandler } from 'fastify'
import { buildResolvers } from './resolvers.js'
import { conformGraphQLRoute, refuseSubscriptionOverHttp } from './http.js'
import { graphqlErrorHandler, refusalErrors } from './errors.js'
import { addGraphqlLimits, graphqlSecurityOptions } from './limits.js'
import { closeRefusedUpgrade, subscriptionAdmission, subscriptionOptions, subscriptionResolvers } from './subscriptions.js'
import { guardSubscriptionSockets } from './websocket.js'

/** schema/schema.graphql is the single source of truth for the GraphQL API. */
export const SCHEMA_PATH = new URL('../../schema/schema.graphql', import.meta.url)

/**
 * The GraphQL API at /graphql (POST and GET), JIT-compiled after a query's
 * first run. Every resolver reads through the task loader.
 */
export const graphql = fp(async function graphql (app: FastifyInstance) {
  const limits = app.security.policy.graphql
  app.addHook('onRoute', conformGraphQLRoute('/graphql', closeRefusedUpgrade as onResponseHookHandler))
  // Subscriptions meet the checks of HTTP requests, and the protocol's rules on ids (src/graphql/websocket.ts).
  app.addHook('onRoute', guardSubscriptionSockets('/graphql', subscriptionAdmission(app, limits), refusalErrors))
  await app.register(mercurius, {
    ...graphqlSecurityOptions(limits),
    schema: readFileSync(SCHEMA_PATH, 'utf8'),
    resolvers: { ...buildResolvers(), ...subscriptionResolvers() },
    path: '/graphql',
    graphiql: false,
    errorHandler: graphqlErrorHandler,
    jit: 1,
    // WebSocket subscriptions on the same path, fed by the shared watcher (src/core/watcher.ts).
    subscription: subscriptionOptions(app.gateway.config)
  })

  // Subscriptions run over WebSocket or SSE; over HTTP they are a client error, before any other check of variables.
  app.graphql.addHook('preExecution', refuseSubscriptionOverHttp)
  // Depth, field and id limits (src/graphql/limits.ts).
  addGraphqlLimits(app, limits)

  // Tasks served stale (upstream failed) are listed in the response's extensions.
  app.graphql.addHook('onResolution', async (execution, ctx) => {
    if (ctx.staleTasks !== undefined) {
      (execution as { extensions?: Record<string, unknown> }).extensions = { stale: ctx.staleTasks }
    }
  })
}, { name: 'graphql', dependencies: ['gateway', 'watcher', 'security'] })
