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

  /**
   * The entry a fresh upstream answer makes, stored at `now`, and how long it
   * is kept (fresh TTL plus the stale window; an unknown id has nothing worth
   * serving stale). The shared tier (L2) stores the same entry for as long.
   */
  entryFor (stored: StoredTask | null, now = this.#opts.now()): { entry: CacheEntry, keepMs: number } {
    const { ttlMs, finalTtlMs, notFoundTtlMs } = this.#opts
    const fresh = stored === null ? notFoundTtlMs : stored.final ? finalTtlMs : ttlMs
    return { entry: { stored, storedAt: now, freshUntil: now + fresh }, keepMs: this.keepOf(stored, fresh) }
  }

  /** How long an entry is kept in all, given how long it is fresh. */
  keepOf (stored: StoredTask | null, freshMs: number): number {
    return stored === null ? freshMs : freshMs + this.#opts.staleMs
  }

  /** Stores a fresh upstream answer; returns the entry, or undefined when nothing is kept (cache off). */
  set (partition: string, id: string, stored: StoredTask | null): CacheEntry | undefined {
    if (this.#lru === undefined) return undefined
    const { entry, keepMs } = this.entryFor(stored)
    if (keepMs <= 0) return undefined
    this.#lru.set(partition + '\0' + id, entry, { ttl: keepMs })
    return entry
  }

  /**
   * Stores an entry made elsewhere (another replica, through the shared
   * tier) with its own expiry: it is fresh until its `freshUntil`, never for
   * a TTL of its own, so no replica serves a task older than the TTL.
   */
  put (partition: string, id: string, entry: CacheEntry): void {
    if (this.#lru === undefined) return
    const key = partition + '\0' + id
    const keep = this.keepOf(entry.stored, entry.freshUntil - this.#opts.now())
    // A copy never replaces a newer answer this replica already holds.
    if (keep <= 0 || (this.#lru.peek(key)?.storedAt ?? -Infinity) > entry.storedAt) return
    this.#lru.set(key, entry, { ttl: keep })
  }

  delete (partition: string, id: string): void {
    this.#lru?.delete(partition + '\0' + id)
  }

  clear (): void { this.#lru?.clear() }
}

/** The newer of two entries, by when they were fetched. */
export function newerEntry (a: CacheEntry | undefined, b: CacheEntry | undefined): CacheEntry | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return b.storedAt > a.storedAt ? b : a
}
