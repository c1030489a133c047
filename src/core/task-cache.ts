import { LRUCache } from 'lru-cache'
import type { StoredTask } from './stored-task.js'

export interface TaskCacheOptions {
  maxEntries: number
  /** Freshness of an unfinished task; 0 turns the whole cache off. */
  ttlMs: number
  finalTtlMs: number
  notFoundTtlMs: number
  /** How long past freshness a task is kept for stale-if-error. */
  staleMs: number
  now: () => number
}

export interface CacheEntry {
  /** `null` records that upstream did not return this id. */
  readonly stored: StoredTask | null
  readonly storedAt: number
  readonly freshUntil: number
}

/**
 * Bounded LRU of tasks, partitioned by credential: the key is
 * `partition + "\0" + id`, so one tenant's entry can never answer another's
 * lookup. Each entry lives `fresh TTL + staleMs`; past its fresh TTL it is
 * only handed out as a marked stale answer when upstream fails.
 */
export class TaskCache {
  readonly #lru: LRUCache<string, CacheEntry> | undefined
  readonly #opts: Readonly<TaskCacheOptions>

  constructor (opts: TaskCacheOptions) {
    this.#opts = Object.freeze({ ...opts })
    this.#lru = opts.ttlMs === 0
      ? undefined
      : new LRUCache<string, CacheEntry>({ max: opts.maxEntries, ttl: 1, ttlResolution: 0, perf: { now: opts.now } })
  }

  get enabled (): boolean { return this.#lru !== undefined }
  get size (): number { return this.#lru?.size ?? 0 }
  get max (): number { return this.#opts.maxEntries }

  /** The entry, fresh or stale; undefined once it is past its stale window or evicted. */
  get (partition: string, id: string): CacheEntry | undefined {
    return this.#lru?.get(partition + '\0' + id)
  }

  /** The entry without touching its recency: for checks that are not reads. */
  peek (partition: string, id: string): CacheEntry | undefined {
    return this.#lru?.peek(partition + '\0' + id)
  }

  isFresh (entry: CacheEntry, now = this.#opts.now()): boolean {
    return now < entry.freshUntil
  }

  /** Stores an answer; returns the entry, or undefined when nothing is kept (cache off). */
  set (partition: string, id: string, stored: StoredTask | null): CacheEntry | undefined {
    if (this.#lru === undefined) return undefined
    const { now, ttlMs, finalTtlMs, notFoundTtlMs, staleMs } = this.#opts
    const fresh = stored === null ? notFoundTtlMs : stored.final ? finalTtlMs : ttlMs
    // An unknown id has nothing worth serving stale.
    const keep = stored === null ? fresh : fresh + staleMs
    if (keep <= 0) return undefined
    const storedAt = now()
    const entry: CacheEntry = { stored, storedAt, freshUntil: storedAt + fresh }
    this.#lru.set(partition + '\0' + id, entry, { ttl: keep })
    return entry
  }

  delete (partition: string, id: string): void {
    this.#lru?.delete(partition + '\0' + id)
  }

  clear (): void { this.#lru?.clear() }
}
