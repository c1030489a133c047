import { readFileSync } from 'node:fs'
import fp from 'fastify-plugin'
import mercurius from 'mercurius'
import type { FastifyInstance, onResponseHookHandler } from 'fastify'
import { buildResolvers } from './resolvers.js'
import { mutationResolvers } from './mutations.js'
import { conformGraphQLRoute, refuseSubscriptionOverHttp } from './http.js'
import { graphqlErrorHandler, refusalErrors } from './errors.js'
import { addGraphqlLimits, graphqlSecurityOptions } from './limits.js'
import { RESPONSE_CACHE_MAX_BYTES, ResponseCache, reuseResponses } from './response-cache.js'
import { BatchAccounting, batchedRoute } from './batch.js'
import { closeRefusedUpgrade, subscriptionAdmission, subscriptionOptions, subscriptionResolvers } from './subscriptions.js'
import { guardSubscriptionSockets } from './websocket.js'
import { submitBodyLimitBytes } from '../config.js'
import { errors } from '../errors.js'
import { sendError, unrouted } from '../plugins/error-handler.js'

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
  const { config, loader, now } = app.gateway
  // Mutations carry submit bodies: POST /graphql has the relay's body bound, wherever that is set.
  const submitBodyLimit = submitBodyLimitBytes(config)
  app.addHook('onRoute', (route) => { if (route.url === '/graphql' && route.method === 'POST') route.bodyLimit = submitBodyLimit })
  const responses = config.graphql.responseCacheMaxEntries === 0
    ? undefined
    : new ResponseCache({
      maxEntries: config.graphql.responseCacheMaxEntries,
      maxBytes: RESPONSE_CACHE_MAX_BYTES,
      now,
      isCurrent: (partition, id, entry, at) => loader.isCurrent(partition, id, entry, at)
    })
  // First of the route's own hooks: a reused response skips everything after it.
  if (responses !== undefined) app.addHook('onRoute', reuseResponses('/graphql', responses))
  // A batched POST is one request for the limits (src/graphql/batch.ts).
  app.addHook('onRoute', batchedRoute('/graphql', new BatchAccounting(limits)))
  await app.register(mercurius, {
    ...graphqlSecurityOptions(limits),
    schema: readFileSync(SCHEMA_PATH, 'utf8'),
    resolvers: { ...buildResolvers(), ...mutationResolvers(), ...subscriptionResolvers() },
    path: '/graphql',
    graphiql: false,
    errorHandler: graphqlErrorHandler,
    jit: 1,
    // WebSocket subscriptions on the same path, fed by the shared watcher (src/core/watcher.ts).
    subscription: subscriptionOptions(app.gateway.config)
  })

  // Subscriptions run over WebSocket or SSE; over HTTP they are a client error, before any other check of variables.
  app.graphql.addHook('preExecution', refuseSubscriptionOverHttp)
  // A method /graphql does not answer (PUT, DELETE...): 405 with Allow, as a GraphQL error like every refusal on /graphql.
  await app.register(async function wrongMethod (scope) {
    scope.setNotFoundHandler(function (request, reply) {
      const err = unrouted(app, request, reply)
      if (err instanceof errors.RouteNotFound) return sendError(reply, err)
      graphqlErrorHandler(err, request, reply)
    })
  }, { prefix: '/graphql' })

  // Depth, field and id limits (src/graphql/limits.ts).
  addGraphqlLimits(app, limits)

  // Tasks served stale (upstream failed) are listed in the response's extensions.
  app.graphql.addHook('onResolution', async (execution, ctx) => {
    if (ctx.staleTasks !== undefined) {
      (execution as { extensions?: Record<string, unknown> }).extensions = { stale: ctx.staleTasks }
    }
    if (responses !== undefined && execution.errors !== undefined && execution.errors.length > 0) responses.failed(ctx.reply.request)
  })
  if (responses !== undefined) {
    app.graphql.addHook('preExecution', async (_schema, document, ctx) => { responses.executing(ctx.reply.request, document) })
  }
}, { name: 'graphql', dependencies: ['gateway', 'watcher', 'security'] })
