import { LRUCache } from 'lru-cache'
import type { DoneEntry, IdempotencyEntry, InFlightEntry, LocalIdempotencyStore } from './idempotency.js'

/*
 * Idempotency entries (src/core/idempotency.ts) in this process's memory; the
 * store shared by the replicas is src/shared/idempotency-store.ts.
 */

export interface MemoryStoreOptions {
  maxEntries: number
  now: () => number
}

/**
 * A bounded LRU with a TTL per entry: the store without REDIS_URL, and the
 * fallback while Redis is down. Entries are copied in and out, so no caller
 * can change a stored answer.
 */
export class MemoryIdempotencyStore implements LocalIdempotencyStore {
  readonly #lru: LRUCache<string, IdempotencyEntry>

  constructor (opts: MemoryStoreOptions) {
    this.#lru = new LRUCache<string, IdempotencyEntry>({ max: opts.maxEntries, ttl: 1, ttlResolution: 0, perf: { now: opts.now } })
  }

  get size (): number { return this.#lru.size }

  peek (key: string): IdempotencyEntry | undefined {
    const entry = this.#lru.get(key)
    return entry === undefined ? undefined : structuredClone(entry)
  }

  async claim (key: string, marker: InFlightEntry, leaseMs: number): Promise<IdempotencyEntry | undefined> {
    const held = this.peek(key)
    if (held !== undefined) return held
    this.#lru.set(key, { ...marker }, { ttl: leaseMs })
    return undefined
  }

  async complete (key: string, marker: InFlightEntry, done: DoneEntry, ttlMs: number): Promise<void> {
    const held = this.#lru.get(key)
    if (held === undefined || isOurs(held, marker)) this.#lru.set(key, structuredClone(done), { ttl: ttlMs })
  }

  async release (key: string, marker: InFlightEntry): Promise<void> {
    const held = this.#lru.get(key)
    if (held !== undefined && isOurs(held, marker)) this.#lru.delete(key)
  }
}

function isOurs (held: IdempotencyEntry, marker: InFlightEntry): boolean {
  return held.state === 'in-flight' && held.token === marker.token
}
