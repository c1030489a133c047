import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { Batcher } from '../core/batcher.js'
import { TaskCache } from '../core/task-cache.js'
import { TaskLoader } from '../core/task-loader.js'
import { SharedFlight } from '../core/shared-flight.js'
import { contentVersion } from '../core/credentials.js'
import { RedisTaskStore } from '../shared/redis-store.js'
import type { SharedTierState } from './redis.js'
import { UpstreamClient } from '../upstream/client.js'
import { CircuitBreaker, type BreakerState } from '../upstream/breaker.js'
import { taskFetcher } from '../upstream/fetch-tasks.js'
import type { GatewayMetrics } from './metrics.js'

export interface Readiness {
  ready: boolean
  reason?: string
  breaker?: { state: BreakerState, retryInMs: number }
  /** The shared tier, when REDIS_URL is set; `down` never makes a replica unready (it serves from L1 and upstream). */
  redis?: SharedTierState
}

/** What every route and resolver reads through: one instance per app, never module state. */
export interface Gateway {
  readonly config: GatewayConfig
  readonly loader: TaskLoader
  readonly batcher: Batcher
  readonly cache: TaskCache
  /** `breaker.state` is 'closed', 'open' or 'half-open'. */
  readonly breaker: CircuitBreaker
  /** Cross-replica single flight over L2; undefined without REDIS_URL (or with the cache off). */
  readonly shared: SharedFlight | undefined
  /** The app's wall clock (AppDeps.now): cache freshness and the watcher's aligned ticks read the same one. */
  readonly now: () => number
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

/**
 * A lease outlives the upstream deadline by this much (plus the batch
 * window, for which a leased id may be held before it is sent), so that it
 * only runs out when its holder is gone.
 */
export const LEASE_MARGIN_MS = 1_000
/** How often a lookup waiting on another replica's lease asks L2 again, in case an announcement was lost. */
export const LEASE_POLL_MS = 500

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
  // The shared tier holds cached answers: with the cache off there is nothing to share.
  const tier = cache.enabled ? app.redis : undefined
  const batcher = new Batcher({
    ...config.batch,
    fetch: taskFetcher(upstream, breaker),
    // With the shared tier, the flight writes L1 and L2 from the same entry.
    onResult: tier === undefined ? (scope, id, task) => { cache.set(scope.partition, id, task) } : undefined,
    onBatch: metrics?.onBatch,
    onObserverError: (err) => app.log.error({ err }, 'a batch observer failed')
  })
  let shared: SharedFlight | undefined
  if (tier !== undefined) {
    const leaseMs = config.upstream.timeoutMs + config.batch.windowMs + LEASE_MARGIN_MS
    shared = new SharedFlight({
      // Keys carry a digest of upstream and its key: deployments sharing one Redis never share answers.
      store: new RedisTaskStore(tier, contentVersion(`${config.upstream.baseUrl}\n${config.upstream.key ?? ''}`, 16)),
      upstream: batcher,
      cache,
      now,
      leaseMs,
      maxWaitMs: leaseMs + config.upstream.timeoutMs,
      pollMs: LEASE_POLL_MS,
      maxQueued: config.batch.maxQueued,
      observer: metrics?.shared
    })
  }
  const loader = new TaskLoader({ cache, batcher, upstream, now, onCache: metrics?.onCache, shared })

  app.decorate('gateway', {
    config,
    loader,
    batcher,
    cache,
    breaker,
    shared,
    now,
    readiness: app.redis === undefined
      ? () => readinessOf(breaker)
      : () => ({ ...readinessOf(breaker), redis: app.redis!.state })
  } satisfies Gateway)

  // Fastify closes the server and waits for requests in flight before onClose runs.
  app.addHook('onClose', async () => {
    shared?.close()
    batcher.close()
    await upstream.close()
  })
}, { name: 'gateway', dependencies: ['redis'] })
