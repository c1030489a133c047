/* eslint-disable no-new -- prom-client metrics register themselves with the registries they are given */
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { BatchReport } from '../core/batcher.js'
import type { CacheStatus } from '../core/task-loader.js'
import type { SharedObserver, SharedOperation } from '../core/shared-flight.js'
import type { UpstreamObserver } from '../upstream/client.js'
import { errors } from '../errors.js'
import { bearerToken, matchesDigest, sha256 } from '../core/credentials.js'

/** Route label of requests that matched no route: raw URLs would make the label unbounded. */
export const NOT_FOUND_ROUTE = '__not_found'
/** Route label of requests that failed before routing (bad URL, bad headers). */
export const UNROUTED = '__unrouted'

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const COUNT_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
const BREAKER_STATES = ['closed', 'open', 'half-open'] as const
/** Calls to the shared tier that can fail: the read path's, and the rate limit's counters. */
export type SharedTierOperation = SharedOperation | 'rate-limit'
const SHARED_OPERATIONS: readonly SharedTierOperation[] = ['acquire', 'settle', 'forget', 'rate-limit']

/** What the shared tier reports: the read path's counters, and failed rate-limit calls. */
export interface SharedTierMetrics extends SharedObserver {
  error (operation: SharedTierOperation): void
}

/**
 * Everything the gateway reports, on one registry per app. The hooks the core
 * calls (`observer`, `onBatch`, `onCache`) are plain closures so the hot path
 * pays for a counter bump and nothing else.
 */
export interface GatewayMetrics {
  readonly registry: Registry
  readonly observer: UpstreamObserver
  readonly onBatch: (report: BatchReport) => void
  readonly onCache: (status: CacheStatus) => void
  /** Present when the shared tier (REDIS_URL) is configured. */
  readonly shared: SharedTierMetrics | undefined
  observeRequest (method: string, route: string, statusCode: number, seconds: number): void
}

/** What the gauges read at scrape time; the gateway core provides it. */
export interface MetricsSource {
  readonly cache: { readonly size: number, readonly max: number }
  readonly breaker: { readonly state: string }
  readiness (): { ready: boolean }
}

/**
 * `gateway` is read lazily, at scrape time: the metrics exist before the
 * gateway core does, because the core's parts are built with their hooks.
 */
export function createMetrics (gateway: () => MetricsSource, options: { sharedTier?: () => 'up' | 'down' } = {}): GatewayMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]

  const requestDuration = new RequestHistogram(
    'gateway_http_request_duration_seconds',
    'HTTP requests by method, route pattern and status code.',
    SECONDS_BUCKETS
  )
  registry.registerMetric(requestDuration as unknown as Histogram)
  const upstreamCalls = new Counter({
    name: 'gateway_upstream_calls_total',
    help: 'list-by-condition calls by outcome: ok or the error code the call failed with (retries inside one call count once).',
    labelNames: ['outcome'] as const,
    registers
  })
  const upstreamDuration = new Histogram({
    name: 'gateway_upstream_call_duration_seconds',
    help: 'Latency of list-by-condition calls, retries and backoff included, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: SECONDS_BUCKETS,
    registers
  })
  const upstreamInFlight = new Gauge({
    name: 'gateway_upstream_in_flight',
    help: 'list-by-condition calls in flight.',
    registers
  })
  const retries = new Counter({
    name: 'gateway_upstream_retries_total',
    help: 'Upstream attempts retried after a retryable failure.',
    registers
  })
  const batchIds = new Histogram({
    name: 'gateway_batch_size_ids',
    help: 'Ids per upstream call. A mean above 1 is the batcher merging lookups.',
    buckets: COUNT_BUCKETS,
    registers
  })
  const batchLookups = new Histogram({
    name: 'gateway_batch_lookups',
    help: 'Lookups answered per upstream call: its ids plus every lookup that joined one of them.',
    buckets: COUNT_BUCKETS,
    registers
  })
  // Lookups are the hottest path: plain integers, folded into the counter when scraped.
  const lookups: Record<CacheStatus, number> = { hit: 0, miss: 0, stale: 0 }
  const reported: Record<CacheStatus, number> = { hit: 0, miss: 0, stale: 0 }
  new Counter({
    name: 'gateway_cache_lookups_total',
    help: 'Task lookups by cache result. A stale serve is also counted as the miss that preceded it.',
    labelNames: ['result'] as const,
    registers,
    collect () {
      for (const result of ['hit', 'miss', 'stale'] as const) {
        this.labels(result).inc(lookups[result] - reported[result])
        reported[result] = lookups[result]
      }
    }
  })
  new Gauge({
    name: 'gateway_cache_entries',
    help: 'Entries in the task cache (fresh and stale).',
    registers,
    collect () { this.set(gateway().cache.size) }
  })
  new Gauge({
    name: 'gateway_cache_max_entries',
    help: 'Bound of the task cache.',
    registers,
    collect () { this.set(gateway().cache.max) }
  })
  new Gauge({
    name: 'gateway_ready',
    help: '1 when the gateway reports itself ready (see /readyz), else 0.',
    registers,
    collect () { this.set(gateway().readiness().ready ? 1 : 0) }
  })
  new Gauge({
    name: 'gateway_upstream_breaker_state',
    help: 'Circuit breaker in front of upstream: 1 on the series of its current state.',
    labelNames: ['state'] as const,
    registers,
    collect () {
      const state = gateway().breaker.state
      for (const s of BREAKER_STATES) this.labels(s).set(s === state ? 1 : 0)
    }
  })

  return {
    registry,
    shared: options.sharedTier === undefined ? undefined : sharedTierMetrics(registers, options.sharedTier),
    observer: {
      callStarted () { upstreamInFlight.inc() },
      callFinished (outcome, durationMs) {
        upstreamInFlight.dec()
        upstreamCalls.labels(outcome).inc()
        upstreamDuration.labels(outcome).observe(durationMs / 1000)
      },
      retried () { retries.inc() }
    },
    onBatch (report) {
      batchIds.observe(report.ids)
      batchLookups.observe(report.lookups)
    },
    onCache (status) {
      lookups[status]++
    },
    observeRequest (method, route, statusCode, seconds) {
      requestDuration.observe(method, route, statusCode, seconds)
    }
  }
}

/** The shared tier's gauge and counters; only registered when REDIS_URL is set. */
function sharedTierMetrics (registers: Registry[], state: () => 'up' | 'down'): SharedTierMetrics {
  new Gauge({
    name: 'gateway_shared_tier_up',
    help: 'The shared tier (Redis): 1 while connected, 0 while down (this replica then serves from L1 and upstream alone).',
    registers,
    collect () { this.set(state() === 'up' ? 1 : 0) }
  })
  const lookups = new Counter({
    name: 'gateway_shared_cache_lookups_total',
    help: 'L1 misses looked up in the shared cache (L2), by result: hit (fresh in L2, or announced fresh by another replica before the lookup asked) or miss.',
    labelNames: ['result'] as const,
    registers
  })
  const errors = new Counter({
    name: 'gateway_shared_tier_errors_total',
    help: 'Shared-tier calls that failed or timed out (REDIS_TIMEOUT_MS), by operation; each fell back to L1 and upstream.',
    labelNames: ['operation'] as const,
    registers
  })
  const waits = new Counter({
    name: 'gateway_shared_lease_waits_total',
    help: 'Lookups that found another replica fetching their id (its lease) and waited for its answer instead of asking upstream.',
    registers
  })
  const takeovers = new Counter({
    name: 'gateway_shared_lease_takeovers_total',
    help: 'Waiting lookups that found the lease gone without an answer (its holder died) and fetched the id themselves.',
    registers
  })
  for (const result of ['hit', 'miss']) lookups.labels(result).inc(0)
  for (const operation of SHARED_OPERATIONS) errors.labels(operation).inc(0)
  return {
    lookups (result, count) { if (count > 0) lookups.labels(result).inc(count) },
    leaseWait () { waits.inc() },
    takeover () { takeovers.inc() },
    error (operation) { errors.labels(operation).inc() }
  }
}

interface Series {
  readonly labels: Readonly<Record<string, string>>
  /** Per bucket, not cumulative; the last slot is +Inf. */
  readonly counts: Float64Array
  sum: number
  count: number
}

/**
 * The per-request histogram. prom-client's own observe() validates and
 * hashes its labels on every call, which on a cache hit costs a tenth of the
 * whole request; this one finds its series in nested maps and bumps a slot.
 * It speaks prom-client's metric contract (name, help, type, get), so the
 * registry renders it like any other histogram.
 */
class RequestHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #series = new Map<string, Map<string, Map<number, Series>>>()

  constructor (readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  observe (method: string, route: string, statusCode: number, seconds: number): void {
    let byMethod = this.#series.get(route)
    if (byMethod === undefined) this.#series.set(route, byMethod = new Map())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map())
    let series = byStatus.get(statusCode)
    if (series === undefined) {
      series = { labels: { method, route, status_code: String(statusCode) }, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 }
      byStatus.set(statusCode, series)
    }
    let i = 0
    while (i < this.buckets.length && seconds > this.buckets[i]!) i++
    series.counts[i]!++
    series.sum += seconds
    series.count++
  }

  async get (): Promise<{ name: string, help: string, type: string, aggregator: string, values: unknown[] }> {
    const values: unknown[] = []
    for (const byMethod of this.#series.values()) {
      for (const byStatus of byMethod.values()) {
        for (const { labels, counts, sum, count } of byStatus.values()) {
          let acc = 0
          this.buckets.forEach((le, i) => {
            acc += counts[i]!
            values.push({ metricName: `${this.name}_bucket`, labels: { le }, sharedLabels: labels, value: acc })
          })
          values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, sharedLabels: labels, value: count })
          values.push({ metricName: `${this.name}_sum`, labels: {}, sharedLabels: labels, value: sum })
          values.push({ metricName: `${this.name}_count`, labels: {}, sharedLabels: labels, value: count })
        }
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void { this.#series.clear() }
}

/**
 * Times every request by its route pattern, and serves GET /metrics. With a
 * token, /metrics wants `Authorization: Bearer <token>`, compared in
 * constant time; the token itself is never logged or echoed.
 */
export const metricsPlugin = fp<{ metrics: GatewayMetrics, token: string | undefined }>(async function metricsPlugin (app: FastifyInstance, { metrics, token }) {
  app.addHook('onResponse', function (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    const route = request.is404 ? NOT_FOUND_ROUTE : request.routeOptions.url ?? UNROUTED
    metrics.observeRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })

  const expected = token === undefined ? undefined : [sha256(token)]
  app.get('/metrics', {
    onRequest: async function (request, reply) {
      if (expected === undefined) return
      const given = bearerToken(request.headers.authorization)
      if (given === undefined || !matchesDigest(sha256(given), expected)) {
        reply.header('www-authenticate', 'Bearer realm="metrics"')
        throw new errors.Unauthenticated('/metrics needs Authorization: Bearer <METRICS_TOKEN>')
      }
    }
  }, async function (request, reply) {
    reply.type(metrics.registry.contentType)
    return metrics.registry.metrics()
  })
}, { name: 'metrics' })
