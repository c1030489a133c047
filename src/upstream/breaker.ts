import type { FastifyBaseLogger } from 'fastify'
import { errors, type GatewayError } from '../errors.js'

export type BreakerState = 'closed' | 'open' | 'half-open'

export interface CircuitBreakerOptions {
  /** Consecutive availability failures that open the circuit. */
  threshold: number
  /** How long an open circuit fails fast before one probe call is let through. */
  cooldownMs: number
  /**
   * Whether a 429 counts. Under pass-through tenancy a 429 is usually a limit
   * on that tenant's own key, and must not open the circuit for every tenant.
   */
  countRateLimits?: boolean
  now?: () => number
  logger?: FastifyBaseLogger
}

export interface BreakerSnapshot {
  readonly state: BreakerState
  /** Milliseconds until the next probe is allowed; 0 unless open. */
  readonly retryInMs: number
  /** The failure that opened the circuit, when open. */
  readonly reason: string | undefined
}

/**
 * True when an error counts against upstream's availability. A 4xx answer
 * (say a client's bad pass-through key, or the limit on its own key) shows
 * upstream is up, so it must not open the circuit for everyone else.
 */
export function isAvailabilityFailure (err: unknown, countRateLimits = true): boolean {
  if (err instanceof errors.UpstreamRateLimited) return countRateLimits
  if (!(err instanceof errors.UpstreamError || err instanceof errors.UpstreamTimeout || err instanceof errors.UpstreamBadResponse)) return false
  const status = (err as GatewayError).upstreamStatus
  return status === undefined || status < 400 || status >= 500 || status === 429
}

/**
 * A circuit breaker around upstream lookups. Closed: calls go through and
 * consecutive availability failures are counted. Open: calls fail fast with
 * UPSTREAM_CIRCUIT_OPEN until the cool-down ends. Half-open: exactly one
 * probe goes through (the rest still fail fast); its success closes the
 * circuit, its failure opens it for another cool-down.
 */
export class CircuitBreaker {
  readonly #opts: Readonly<Required<Omit<CircuitBreakerOptions, 'logger'>>>
  readonly #log: FastifyBaseLogger | undefined
  #failures = 0
  #openUntil = 0
  #open = false
  #probing = false
  #reason: string | undefined

  constructor (opts: CircuitBreakerOptions) {
    if (!Number.isInteger(opts.threshold) || opts.threshold < 1) throw new TypeError('threshold must be a positive integer')
    if (!Number.isInteger(opts.cooldownMs) || opts.cooldownMs < 0) throw new TypeError('cooldownMs must be a non-negative integer')
    this.#opts = Object.freeze({ threshold: opts.threshold, cooldownMs: opts.cooldownMs, countRateLimits: opts.countRateLimits ?? true, now: opts.now ?? Date.now })
    this.#log = opts.logger
  }

  /** The state as of now; an open circuit whose cool-down is over reads half-open. */
  get state (): BreakerState {
    if (!this.#open) return 'closed'
    return this.#opts.now() < this.#openUntil ? 'open' : 'half-open'
  }

  get snapshot (): BreakerSnapshot {
    const state = this.state
    return {
      state,
      retryInMs: state === 'open' ? this.#openUntil - this.#opts.now() : 0,
      reason: state === 'closed' ? undefined : this.#reason
    }
  }

  /** Runs `fn` unless the circuit is open; records how it went. */
  async run<T> (fn: () => Promise<T>): Promise<T> {
    const state = this.state
    if (state === 'open' || (state === 'half-open' && this.#probing)) throw this.#failFast(state)
    const probe = state === 'half-open'
    if (probe) this.#probing = true
    try {
      const result = await fn()
      this.#succeeded(probe)
      return result
    } catch (err) {
      if (isAvailabilityFailure(err, this.#opts.countRateLimits)) this.#failed(err as Error, probe)
      else this.#succeeded(probe)
      throw err
    } finally {
      if (probe) this.#probing = false
    }
  }

  #failFast (state: BreakerState): GatewayError {
    // While the probe is out, its outcome is at most one upstream deadline away; a second is a fair hint.
    const waitMs = state === 'open' ? this.#openUntil - this.#opts.now() : 1000
    const err: GatewayError = new errors.UpstreamCircuitOpen(this.#reason ?? 'upstream is failing')
    err.retryAfter = Math.max(1, Math.ceil(waitMs / 1000))
    return err
  }

  #succeeded (probe: boolean): void {
    this.#failures = 0
    if (this.#open) {
      this.#open = false
      this.#reason = undefined
      this.#log?.info({ breaker: 'closed', probe }, 'upstream circuit breaker closed')
    }
  }

  #failed (err: Error, probe: boolean): void {
    this.#failures++
    if (!probe && (this.#open || this.#failures < this.#opts.threshold)) return
    this.#open = true
    this.#openUntil = this.#opts.now() + this.#opts.cooldownMs
    this.#reason = `${this.#failures} consecutive upstream failures, last: ${err.message}`
    this.#log?.warn({ breaker: 'open', failures: this.#failures, cooldownMs: this.#opts.cooldownMs, code: (err as GatewayError).code, reason: err.message },
      'upstream circuit breaker opened')
  }
}
