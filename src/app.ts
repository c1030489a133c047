import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import { normalizeConfig, type GatewayConfig, type GatewayOptions } from './config.js'
import { Batcher } from './batcher.js'
import { TaskCache } from './task-cache.js'
import { TaskLoader } from './task-loader.js'
import { UpstreamClient } from './upstream/client.js'
import { tenancy } from './tenancy.js'
import { errorHandler } from './error-handler.js'
import { graphql } from './graphql/index.js'
import healthRoutes from './routes/health.js'
import taskRoutes from './routes/tasks.js'
import dropInRoutes from './routes/dropin.js'

export interface Readiness {
  ready: boolean
  reason?: string
}

/** What every route and resolver reads through: one instance per app, never module state. */
export interface Gateway {
  readonly config: GatewayConfig
  readonly loader: TaskLoader
  readonly batcher: Batcher
  readonly cache: TaskCache
  readonly upstream: UpstreamClient
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
}

/** Headers that carry credentials: never logged, at any level. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]'
]

const gatewayCore = fp<{ config: GatewayConfig, deps: AppDeps }>(async function gatewayCore (app, { config, deps }) {
  const now = deps.now ?? Date.now
  const upstream = new UpstreamClient({
    ...config.upstream,
    logger: app.log.child({ component: 'upstream' }),
    random: deps.random,
    sleep: deps.sleep
  })
  const cache = new TaskCache({ ...config.cache, now })
  const batcher = new Batcher({
    ...config.batch,
    fetch: (ids, scope) => upstream.listByCondition(ids, scope.credential),
    onResult: (scope, id, task) => cache.set(scope.partition, id, task)
  })
  const loader = new TaskLoader({ cache, batcher, now })

  app.decorate('gateway', {
    config,
    loader,
    batcher,
    cache,
    upstream,
    readiness: () => ({ ready: true })
  } satisfies Gateway)

  // Fastify closes the server and waits for requests in flight before onClose runs.
  app.addHook('onClose', async () => {
    batcher.close()
    await upstream.close()
  })
}, { name: 'gateway' })

/** Builds the gateway from options; tests use this, src/server.ts adds the environment and signals. */
export async function buildApp (options: GatewayOptions = {}, deps: AppDeps = {}): Promise<FastifyInstance> {
  const config = normalizeConfig(options)
  const app = Fastify({
    logger: deps.logger ?? { level: config.logLevel, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    bodyLimit: config.limits.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    routerOptions: { maxParamLength: 1024 },
    forceCloseConnections: 'idle'
  })
  await app.register(errorHandler)
  await app.register(tenancy, { mode: config.upstream.auth })
  await app.register(gatewayCore, { config, deps })
  await app.register(healthRoutes)
  await app.register(taskRoutes)
  await app.register(dropInRoutes)
  await app.register(graphql)
  return app
}
