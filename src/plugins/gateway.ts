import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { Batcher } from '../core/batcher.js'
import type { StoredTask } from '../core/stored-task.js'
import { TaskCache } from '../core/task-cache.js'
import { TaskLoader } from '../core/task-loader.js'
import { UpstreamClient } from '../upstream/client.js'
import { CircuitBreaker, type BreakerState } from '../upstream/breaker.js'
import { taskFetcher } from '../upstream/fetch-tasks.js'
import type { GatewayMetrics } from './metrics.js'

export interface Readiness {
  ready: boolean
  reason?: string
  breaker?: { state: BreakerState, retryInMs: number }
}

/** What every route and resolver reads through: one instance per app, never module state. */
export interface Gateway {
  readonly config: GatewayConfig
  readonly loader: TaskLoader
  readonly batcher: Batcher<StoredTask>
  readonly cache: TaskCache
  /** The app's clock (injectable for tests). */
  readonly now: () => number
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
  /** Set in demo mode: the embedded simulator's keep-alive tasks and image links. */
  demo?: DemoDeps
}

/** What the gateway's surfaces know of the demo simulator (src/demo.ts). */
export interface DemoDeps {
  /** The simulator's image links start with `<imageBase>/mj/image/`; HTTP answers carry the client's own address instead. */
  readonly imageBase: string
  /** The tasks the simulator started to keep the demo moving, newest first; asking counts as someone watching. */
  recentTaskIds (): readonly string[]
  /** How often the dashboard asks for them; 5 s unless set. */
  readonly pollMs?: number
}

/** Ready unless the breaker is open; half-open reads ready, as the probe needs traffic to reach this instance. */
export function readinessOf (breaker: CircuitBreaker): Readiness {
  const { state, retryInMs, reason } = breaker.snapshot
  if (state === 'closed') return { ready: true }
  if (state === 'half-open') return { ready: true, breaker: { state, retryInMs } }
  return { ready: false, reason: `circuit breaker open: ${reason ?? 'upstream is failing'}`, breaker: { state, retryInMs } }
}

/**
 * The read path, built once per app: upstream client, breaker, batcher, cache
 * and loader, and their shutdown. Routes and resolvers only see the loader.
 */
export const gatewayCore = fp<{ config: GatewayConfig, deps: AppDeps, metrics: GatewayMetrics | undefined }>(async function gatewayCore (app: FastifyInstance, { config, deps, metrics }) {
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
    fetch: taskFetcher(upstream, breaker),
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
    now,
    breaker,
    readiness: () => readinessOf(breaker)
  } satisfies Gateway)

  // Fastify closes the server and waits for requests in flight before onClose runs.
  app.addHook('onClose', async () => {
    batcher.close()
    await upstream.close()
  })
}, { name: 'gateway' })
