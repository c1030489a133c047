import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { Batcher } from '../core/batcher.js'
import type { StoredTask } from '../core/stored-task.js'
import { TaskCache } from '../core/task-cache.js'
import { TaskLoader } from '../core/task-loader.js'
import { SharedFlight } from '../core/shared-flight.js'
import { contentVersion } from '../core/credentials.js'
import { Idempotency, type StoreOperation } from '../core/idempotency.js'
import { MemoryIdempotencyStore } from '../core/idempotency-store.js'
import { RedisIdempotencyStore } from '../shared/idempotency-store.js'
import { RedisTaskStore } from '../shared/redis-store.js'
import type { SharedTierState } from './redis.js'
import { UpstreamClient } from '../upstream/client.js'
import { CircuitBreaker, type BreakerState } from '../upstream/breaker.js'
import { taskFetcher } from '../upstream/fetch-tasks.js'
import type { GatewayMetrics } from './metrics.js'
import type { Phase } from './shutdown.js'

export interface Readiness {
  ready: boolean
  /** Why not ready: `starting` or `shutting down`. */
  reason?: string
  /** The upstream circuit breaker: information, it never makes the instance unready. */
  breaker: { state: BreakerState, retryInMs: number, reason?: string }
  /** The shared tier, when REDIS_URL is set; `down` never makes a replica unready (it serves from L1 and upstream). */
  redis?: SharedTierState
}

/** What every route and resolver reads through: one instance per app, never module state. */
export interface Gateway {
  readonly config: GatewayConfig
  readonly loader: TaskLoader
  readonly batcher: Batcher<StoredTask>
  readonly cache: TaskCache
  /** The app's wall clock (AppDeps.now, injectable for tests): cache freshness and the watcher's aligned ticks read the same one. */
  readonly now: () => number
  /** `breaker.state` is 'closed', 'open' or 'half-open'. */
  readonly breaker: CircuitBreaker
  /** Cross-replica single flight over L2; undefined without REDIS_URL (or with the cache off). */
  readonly shared: SharedFlight | undefined
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

/**
 * A lease outlives the upstream deadline by this much (plus the batch
 * window, for which a leased id may be held before it is sent), so that it
 * only runs out when its holder is gone.
 */
export const LEASE_MARGIN_MS = 1_000
/** How often a lookup waiting on another replica's lease asks L2 again, in case an announcement was lost. */
export const LEASE_POLL_MS = 500

/**
 * Readiness describes this instance: ready whenever it is serving, the breaker
 * open included, since it then serves stale copies or fails fast. An upstream
 * outage hits every replica at once; marking them all unready would only take
 * the stale answers away. Not ready while starting or shutting down.
 */
export function readinessOf (phase: Phase, breaker: CircuitBreaker): Readiness {
  const { state, retryInMs, reason } = breaker.snapshot
  const report = reason === undefined ? { state, retryInMs } : { state, retryInMs, reason }
  return phase === 'serving' ? { ready: true, breaker: report } : { ready: false, reason: phase, breaker: report }
}

const STORE_FAILURES: Readonly<Record<StoreOperation, string>> = {
  claim: 'Redis failed on an idempotency key: the key is kept in this replica\'s memory only',
  complete: 'Redis failed to store a submit\'s answer: it is kept in this replica\'s memory only',
  release: 'Redis failed to release an idempotency key: it stays taken until its lease ends'
}

/** An in-flight marker outlives the submit's deadline by this much, so only a crashed request's marker ever expires. */
const SUBMIT_LEASE_MARGIN_MS = 5_000

/**
 * Idempotency keys in Redis when the shared tier is configured, so every
 * replica honours a key; in this process's memory otherwise, and while Redis
 * is down (a retry is then recognised only by the replica that saw the key).
 */
function idempotencyFor (app: FastifyInstance, config: GatewayConfig, now: () => number): Idempotency {
  const memory = new MemoryIdempotencyStore({ maxEntries: config.idempotency.maxEntries, now })
  const shared = app.redis
  const log = app.log.child({ component: 'idempotency' })
  return new Idempotency({
    store: shared === undefined ? memory : new RedisIdempotencyStore(shared.client, shared.prefix),
    fallback: shared === undefined ? undefined : memory,
    ttlMs: config.idempotency.ttlMs,
    leaseMs: config.upstream.timeoutMs + SUBMIT_LEASE_MARGIN_MS,
    onStoreError: (err: unknown, operation: StoreOperation) => {
      log.warn({ operation, reason: (err as Error).message }, STORE_FAILURES[operation])
    }
  })
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
    onResult: tier === undefined ? (scope, id, stored) => { cache.set(scope.partition, id, stored) } : undefined,
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
  const loader = new TaskLoader({ cache, batcher, upstream, now, onCache: metrics?.onCache, shared, idempotency: idempotencyFor(app, config, now) })

  app.decorate('gateway', {
    config,
    loader,
    batcher,
    cache,
    now,
    breaker,
    shared,
    readiness: app.redis === undefined
      ? () => readinessOf(app.phase, breaker)
      : () => ({ ...readinessOf(app.phase, breaker), redis: app.redis!.state })
  } satisfies Gateway)

  // Fastify closes the server and waits for requests in flight before onClose runs.
  app.addHook('onClose', async () => {
    shared?.close()
    batcher.close()
    await upstream.close()
  })
}, { name: 'gateway', dependencies: ['lifecycle', 'redis'] })
