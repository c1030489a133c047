import Fastify, { type FastifyInstance } from 'fastify'
import { randomUUID } from 'node:crypto'
import { normalizeConfig, type GatewayOptions } from './config.js'
import { loggerOptions } from './logging.js'
import { gatewayCore, type AppDeps } from './plugins/gateway.js'
import { lifecycle } from './plugins/shutdown.js'
import { redisPlugin } from './plugins/redis.js'
import { loadShedding } from './plugins/load-shedding.js'
import { tenancy } from './plugins/tenancy.js'
import { security } from './plugins/security.js'
import { pageSecurityHeaders } from './security/browser.js'
import { errorHandler, frameworkErrorHandler } from './plugins/error-handler.js'
import { connectionErrorHandler } from './http/errors.js'
import { createMetrics, metricsPlugin } from './plugins/metrics.js'
import { watcherPlugin } from './plugins/watcher.js'
import { demoLinks } from './plugins/demo-links.js'
import { graphql } from './graphql/index.js'
import { graphiql } from './graphql/graphiql.js'
import streamRoutes from './routes/stream.js'
import dashboardRoutes from './routes/dashboard.js'
import healthRoutes from './routes/health.js'
import taskRoutes from './routes/tasks.js'
import dropInRoutes from './routes/dropin.js'
import relayRoutes from './routes/relay.js'
import docsRoutes from './routes/docs.js'

export type { AppDeps } from './plugins/gateway.js'

/** Builds the gateway from options; tests use this, src/server.ts adds the environment and signals. */
export async function buildApp (options: GatewayOptions = {}, deps: AppDeps = {}): Promise<FastifyInstance> {
  const config = normalizeConfig(options)
  // Unique across restarts and instances for log correlation, and cheaper than a UUID per request.
  const bootId = randomUUID().slice(0, 8)
  let requests = 0
  const { requestTimeoutMs } = config.limits
  const app = Fastify({
    logger: deps.logger ?? loggerOptions(config.logLevel),
    bodyLimit: config.limits.bodyLimitBytes,
    // A string where a list of ids belongs is a client bug: say so instead of coercing it.
    ajv: { customOptions: { coerceTypes: false } },
    requestIdHeader: 'x-request-id',
    // Behind a balancer, request.ip (the per-IP rate limit, stream counts, logs) is the client's only with TRUST_PROXY.
    trustProxy: config.security.trustProxy === undefined ? false : [...config.security.trustProxy],
    genReqId: () => `${bootId}-${(++requests).toString(36)}`,
    routerOptions: { maxParamLength: 1024 },
    forceCloseConnections: 'idle',
    // A request (headers and body) must arrive within REQUEST_TIMEOUT_MS. Node checks the deadlines
    // every connectionsCheckingInterval (30 s by default, which would double a 30 s timeout), and
    // refuses a headersTimeout above requestTimeout. A request that has arrived is past both: live
    // streams and upgraded WebSockets stay open.
    requestTimeout: requestTimeoutMs,
    http: { requestTimeout: requestTimeoutMs, headersTimeout: requestTimeoutMs, connectionsCheckingInterval: Math.ceil(requestTimeoutMs / 10) },
    // Timeouts, oversized headers and malformed request lines get a coded JSON body too.
    clientErrorHandler: connectionErrorHandler(requestTimeoutMs),
    frameworkErrors: frameworkErrorHandler,
    // Requests that arrive while closing get a coded 503 from the lifecycle plugin, not fastify's uncoded one.
    return503OnClosing: false
  })
  await app.register(errorHandler)
  // First of the onRequest hooks: a request that arrives while the gateway closes costs nothing more.
  await app.register(lifecycle)
  // The shared tier (REDIS_URL) before the rate limit and the core, which keep their state in it (idempotency keys).
  await app.register(redisPlugin, { config: config.redis })
  await app.register(tenancy, { mode: config.upstream.auth })
  // Demo mode: the simulator's image links carry the address each client used; before the routes whose answers it rewrites.
  if (deps.demo !== undefined) await app.register(demoLinks, { imageBase: deps.demo.imageBase })
  // Before every route, so a shed request costs one hook and no body parsing.
  await app.register(loadShedding, { ...config.load })
  // Read lazily at scrape time; built here because the rate limit and the core report to it.
  const metrics = config.metrics.enabled
    ? createMetrics(() => app.gateway, { sharedTier: app.redis === undefined ? undefined : () => app.redis!.state })
    : undefined
  // Before every route: headers, CORS, rate limit and client auth, all before a body is read.
  await app.register(security, { config, onSharedTierError: () => metrics?.shared?.error('rate-limit') })
  // Before the core, whose parts report to it, and before the routes, so every route is timed.
  if (metrics !== undefined) await app.register(metricsPlugin, { metrics, token: config.metrics.token })
  await app.register(gatewayCore, { config, deps, metrics })
  // One live-update watcher per app, polling through the core's loader.
  await app.register(watcherPlugin)
  await app.register(healthRoutes)
  await app.register(taskRoutes)
  await app.register(dropInRoutes)
  await app.register(relayRoutes)
  await app.register(streamRoutes)
  await app.register(graphql)
  // The HTML pages in a context of their own, so their security headers cost the API nothing.
  // GraphiQL and /docs are off in production unless GRAPHIQL_ENABLED / DOCS_ENABLED say otherwise.
  const { policy } = app.security
  await app.register(async function pages (scope) {
    await pageSecurityHeaders(scope, policy)
    await scope.register(dashboardRoutes, { demoTaskIds: deps.demoTaskIds, demo: deps.demo })
    if (policy.pages.graphiql) await scope.register(graphiql, { defaultIds: deps.demoTaskIds ?? [] })
    if (policy.pages.docs) await scope.register(docsRoutes)
  })
  return app
}
