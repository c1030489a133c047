import { getHeapStatistics } from 'node:v8'
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors, type GatewayError } from '../errors.js'

export interface LoadSheddingOptions {
  /** Mean event-loop delay in ms past which requests are shed; 0 turns the check off. */
  maxEventLoopDelayMs: number
  /** Heap bytes past which requests are shed; 0 derives it from V8's heap limit. */
  maxHeapUsedBytes: number
  /** RSS bytes past which requests are shed; 0 turns the check off. */
  maxRssBytes: number
  sampleIntervalMs: number
  /** Seconds sent as `Retry-After` on a shed request. */
  retryAfterSeconds?: number
}

/** Share of V8's heap limit used when no heap bound is configured: past it, GC thrashes before the OOM kill. */
export const DEFAULT_HEAP_SHARE = 0.9
const DEFAULT_RETRY_AFTER_S = 5

/**
 * Routes that answer even under pressure: liveness must not flap when the
 * process is merely busy, and metrics are what explains the pressure.
 */
const EXEMPT_URLS: ReadonlySet<string> = new Set(['/healthz', '/metrics'])

export function heapBound (configured: number): number {
  return configured > 0 ? configured : Math.floor(getHeapStatistics().heap_size_limit * DEFAULT_HEAP_SHARE)
}

function check (name: string, value: unknown, min: number): number {
  if (!Number.isInteger(value) || (value as number) < min) throw new TypeError(`load shedding: ${name} must be an integer >= ${min}`)
  return value as number
}

/**
 * Load shedding with @fastify/under-pressure: once the event loop lags or
 * memory is past a bound, requests are answered at once with 503
 * GW_ERR_OVERLOADED and `Retry-After`, in the gateway's error shape, instead
 * of queuing without limit. Checked in `onRequest`, before any body is read.
 */
export const loadShedding = fp<LoadSheddingOptions>(async function loadShedding (app: FastifyInstance, opts) {
  const settings = Object.freeze({
    maxEventLoopDelay: check('maxEventLoopDelayMs', opts.maxEventLoopDelayMs, 0),
    maxHeapUsedBytes: heapBound(check('maxHeapUsedBytes', opts.maxHeapUsedBytes, 0)),
    maxRssBytes: check('maxRssBytes', opts.maxRssBytes, 0),
    sampleInterval: check('sampleIntervalMs', opts.sampleIntervalMs, 100),
    retryAfter: check('retryAfterSeconds', opts.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_S, 1)
  })
  await app.register(underPressure, {
    ...settings,
    // A rejection reaches the gateway's error handler, which sends the usual error body and Retry-After.
    async pressureHandler (request: FastifyRequest, _reply: FastifyReply, type: string, value: number | undefined): Promise<void> {
      if (EXEMPT_URLS.has(request.url.split('?')[0]!)) return
      request.log.warn({ pressure: type, value }, 'shedding request: gateway under pressure')
      const err: GatewayError = new errors.Overloaded(`${type} is past its bound`)
      err.retryAfter = settings.retryAfter
      throw err
    }
  })
}, { name: 'load-shedding' })
