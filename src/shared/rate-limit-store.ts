import { createRequire } from 'node:module'
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { SharedTier } from '../plugins/redis.js'

type Callback = (err: Error | null, result?: { current: number, ttl: number }) => void
type RouteOptions = Parameters<FastifyRateLimitStore['child']>[0]
/** What the plugin constructs a custom store with: its merged global parameters. */
interface StoreParams { continueExceeding?: unknown, exponentialBackoff?: unknown, cache?: unknown }

/** The counting half of @fastify/rate-limit's own stores (its RedisStore and LocalStore). */
interface Counter {
  incr (key: string, callback: Callback, timeWindow: number, max: number): void
  read? (key: string, callback: Callback, timeWindow: number, max: number): void
  child (routeOptions: RouteOptions): Counter
}

// The plugin's stores are not exported by name; these are its own files, pinned by the lockfile.
const require = createRequire(import.meta.url)
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as new (continueExceeding: boolean, exponentialBackoff: boolean, redis: unknown, key?: string) => Counter
const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as new (continueExceeding: boolean, exponentialBackoff: boolean, cache?: number) => Counter

/**
 * The rate limit's counters in the shared tier, so RATE_LIMIT_MAX holds
 * across every replica (@fastify/rate-limit's RedisStore, keys under
 * `<REDIS_PREFIX>rl:`). While Redis is down, or when one of its calls fails
 * or times out, the request is counted in this process instead
 * (@fastify/rate-limit's LocalStore): a replica keeps limiting on its own,
 * and no request fails because Redis does.
 */
export function sharedRateLimitStore (tier: SharedTier, onError: () => void): FastifyRateLimitStoreCtor {
  class FailoverStore implements FastifyRateLimitStore {
    readonly #shared: Counter
    readonly #local: Counter

    constructor (options: StoreParams | { shared: Counter, local: Counter }) {
      if ('shared' in options) {
        this.#shared = options.shared
        this.#local = options.local
        return
      }
      const continueExceeding = options.continueExceeding === true
      const exponentialBackoff = options.exponentialBackoff === true
      this.#shared = new RedisStore(continueExceeding, exponentialBackoff, tier.client, `${tier.prefix}rl:`)
      this.#local = new LocalStore(continueExceeding, exponentialBackoff, typeof options.cache === 'number' ? options.cache : undefined)
    }

    incr (key: string, callback: Callback, timeWindow: number, max: number): void {
      this.#count('incr', key, callback, timeWindow, max)
    }

    read (key: string, callback: Callback, timeWindow: number, max: number): void {
      this.#count('read', key, callback, timeWindow, max)
    }

    child (routeOptions: RouteOptions): FastifyRateLimitStore {
      return new FailoverStore({ shared: this.#shared.child(routeOptions), local: this.#local.child(routeOptions) })
    }

    #count (method: 'incr' | 'read', key: string, callback: Callback, timeWindow: number, max: number): void {
      const local = (): void => { this.#local[method]!(key, callback, timeWindow, max) }
      if (tier.state !== 'up') {
        local()
        return
      }
      this.#shared[method]!(key, (err, result) => {
        if (err === null) {
          callback(null, result)
          return
        }
        onError()
        local()
      }, timeWindow, max)
    }
  }
  return FailoverStore as unknown as FastifyRateLimitStoreCtor
}
