import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import { normalizeConfig, type GatewayConfig, type GatewayOptions } from './config.js'
import { Batcher } from './batcher.js'
import { TaskCache } from './task-cache.js'
import { TaskLoader } from './task-loader.js'
import { UpstreamClient } from './upstream/client.js'
import { CircuitBreaker, type BreakerState } from './upstream/breaker.js'
import { loadShedding } from './load-shedding.js'
import { tenancy } from './tenancy.js'
import { pageSecurityHeaders, security } from './security/index.js'
import { errorHandler } from './error-handler.js'
import { graphql } from './graphql/index.js'
import { watcherPlugin } from './watcher.js'
import streamRoutes from './routes/stream.js'
import dashboardRoutes from './routes/dashboard.js'
import healthRoutes from './routes/health.js'
import taskRoutes from './routes/tasks.js'
import dropInRoutes from './routes/dropin.js'
import passthroughRoutes from './routes/passthrough.js'
import docsRoutes from './routes/docs.js'
import { graphiql } from './graphql/graphiql.js'
import { createMetrics, metricsPlugin, type GatewayMetrics } from './metrics.js'

export interface Readiness {
  ready: boolean
  reason?: string
  breaker?: { state: BreakerState, retryInMs: number }
}

/** What every route and resolver reads through: one instance per app, never module state. */
export interface Gateway {
  readonly config: GatewayConfig
  readonly loader: TaskLoader
  readonly batcher: Batcher
  readonly cache: TaskCache
  readonly upstream: UpstreamClient
  /** `breaker.state` is 'closed', 'open' or 'half-open'. */
  readonly breaker: CircuitBreaker
  readiness (): Readiness
}

declare module 'fastify' {
  interface FastifyInstance {
    gateway: Gateway
  }
}

/** Seams for tests: a clock, jitter and backoff waits, and where logs go. */
export interface AppDeps {
  now?: () => number
  random?: () => number
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
  logger?: FastifyServerOptions['logger']
  /** Set in demo mode: the embedded simulator's seeded task ids, shown by GraphiQL and the dashboard. */
  demoTaskIds?: readonly string[]
}

/** Headers that carry credentials: never logged, at any level. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]'
]

const gatewayCore = fp<{ config: GatewayConfig, deps: AppDeps, metrics: GatewayMetrics | undefined }>(async function gatewayCore (app, { config, deps, metrics }) {
  const now = deps.now ?? Date.now
  const upstream = new UpstreamClient({
    ...config.upstream,
    logger: app.log.child({ component: 'upstream' }),
    random: deps.random,
    sleep: deps.sleep,
    observer: metrics?.observer
  })
  const cache = new TaskCache({ ...config.cache, now })
  const breaker = new CircuitBreaker({
    ...config.breaker,
    countRateLimits: config.upstream.auth !== 'passthrough',
    now,
    logger: app.log.child({ component: 'breaker' })
  })
  const batcher = new Batcher({
    ...config.batch,
    fetch: (ids, scope) => breaker.run(() => upstream.listByCondition(ids, scope.credential)),
    onResult: (scope, id, task) => cache.set(scope.partition, id, task),
    onBatch: metrics?.onBatch,
    onObserverError: (err) => app.log.error({ err }, 'a batch observer failed')
  })
  const loader = new TaskLoader({ cache, batcher, upstream, now, onCache: metrics?.onCache })

  app.decorate('gateway', {
    config,
    loader,
    batcher,
    cache,
    upstream,
    breaker,
    readiness: () => {
      const { state, retryInMs, reason } = breaker.snapshot
      if (state === 'closed') return { ready: true }
      // Half-open reads ready: the probe needs traffic to reach this instance.
      if (state === 'half-open') return { ready: true, breaker: { state, retryInMs } }
      return { ready: false, reason: `circuit breaker open: ${reason ?? 'upstream is failing'}`, breaker: { state, retryInMs } }
    }
  } satisfies Gateway)

  // server.close() only reaps keep-alive sockets idle at that moment; keep reaping
  // while requests in flight finish, or their sockets would hold shutdown open.
  app.addHook('preClose', async () => {
    const reaper = setInterval(() => app.server.closeIdleConnections(), 50)
    reaper.unref()
    app.server.once('close', () => clearInterval(reaper))
  })

  // Fastify closes the server and waits for requests in flight before onClose runs.
  app.addHook('onClose', async () => {
    batcher.close()
    await upstream.close()
  })
}, { name: 'gateway' })

/** Builds the gateway from options; tests use this, src/server.ts adds the environment and signals. */
export async function buildApp (options: GatewayOptions = {}, deps: AppDeps = {}): Promise<FastifyInstance> {
  const config = normalizeConfig(options)
  // Unique across restarts and instances for log correlation, and cheaper than a UUID per request.
  const bootId = randomUUID().slice(0, 8)
  let requests = 0
  const app = Fastify({
    logger: deps.logger ?? { level: config.logLevel, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    bodyLimit: config.limits.bodyLimitBytes,
    // A string where a list of ids belongs is a client bug: say so instead of coercing it.
    ajv: { customOptions: { coerceTypes: false } },
    requestIdHeader: 'x-request-id',
    genReqId: () => `${bootId}-${(++requests).toString(36)}`,
    routerOptions: { maxParamLength: 1024 },
    forceCloseConnections: 'idle'
  })
  await app.register(errorHandler)
  await app.register(tenancy, { mode: config.upstream.auth })
  // Before every route, so a shed request costs one hook and no body parsing.
  await app.register(loadShedding, { ...config.load })
  // Before every route: headers, CORS, rate limit and client auth, all before a body is read.
  await app.register(security, { config })
  // Before the core, whose parts report to it, and before the routes, so every route is timed.
  const metrics = config.metrics.enabled ? createMetrics(() => app.gateway) : undefined
  if (metrics !== undefined) await app.register(metricsPlugin, { metrics, token: config.metrics.token })
  await app.register(gatewayCore, { config, deps, metrics })
  // One live-update watcher per app, polling through the core's loader.
  await app.register(watcherPlugin)
  await app.register(healthRoutes)
  await app.register(taskRoutes)
  await app.register(dropInRoutes)
  await app.register(passthroughRoutes)
  await app.register(streamRoutes)
  await app.register(graphql)
  // The HTML pages in a context of their own, so their security headers cost the API nothing.
  // GraphiQL and /docs are off in production unless GRAPHIQL_ENABLED / DOCS_ENABLED say otherwise.
  const { policy } = app.security
  await app.register(async function pages (scope) {
    await pageSecurityHeaders(scope, policy)
    await scope.register(dashboardRoutes, { demoTaskIds: deps.demoTaskIds })
    if (policy.pages.graphiql) await scope.register(graphiql, { defaultIds: deps.demoTaskIds ?? [] })
    if (policy.pages.docs) await scope.register(docsRoutes)
  })
  return app
}
