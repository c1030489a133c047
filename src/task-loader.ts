import type { Batcher, Scope } from './batcher.js'
import type { TaskCache } from './task-cache.js'
import type { GatewayError } from './errors.js'
import type { UpstreamTask } from './upstream/types.js'

/** How a lookup was answered; REST puts it in `x-cache`. */
export type CacheStatus = 'hit' | 'miss' | 'stale'

export type Lookup =
  | { readonly task: UpstreamTask | null, readonly cache: CacheStatus, readonly ageMs: number, readonly error?: undefined }
  | { readonly task?: undefined, readonly error: GatewayError, readonly cache?: undefined }

export interface TaskLoaderOptions {
  cache: TaskCache
  batcher: Batcher
  now: () => number
  onCache?: (status: CacheStatus) => void
}

/**
 * The one way every surface reads tasks: the cache first, then the batcher.
 * When the batcher fails, a cached task that is past its freshness but still
 * inside its stale window is served instead, marked `stale` (stale-if-error).
 */
export class TaskLoader {
  readonly #cache: TaskCache
  readonly #batcher: Batcher
  readonly #now: () => number
  readonly #onCache: ((status: CacheStatus) => void) | undefined

  constructor (opts: TaskLoaderOptions) {
    this.#cache = opts.cache
    this.#batcher = opts.batcher
    this.#now = opts.now
    this.#onCache = opts.onCache
  }

  /** One lookup per unique id; callers map repeated ids back themselves or use `loadMany`. */
  async load (id: string, scope: Scope): Promise<Lookup> {
    const entry = this.#cache.get(scope.partition, id)
    if (entry !== undefined && this.#cache.isFresh(entry)) {
      this.#onCache?.('hit')
      return { task: entry.task, cache: 'hit', ageMs: this.#now() - entry.storedAt }
    }
    this.#onCache?.('miss')
    try {
      return { task: await this.#batcher.load(id, scope), cache: 'miss', ageMs: 0 }
    } catch (err) {
      if (entry?.task != null) {
        this.#onCache?.('stale')
        return { task: entry.task, cache: 'stale', ageMs: this.#now() - entry.storedAt }
      }
      return { error: err as GatewayError }
    }
  }

  /** Drops what the cache knows about an id, e.g. a remembered "unknown" for a task just submitted. */
  forget (id: string, scope: Scope): void {
    this.#cache.delete(scope.partition, id)
  }

  /** Lookups in request order; a repeated id shares one lookup. */
  loadMany (ids: readonly string[], scope: Scope): Promise<Lookup[]> {
    const byId = new Map<string, Promise<Lookup>>()
    return Promise.all(ids.map((id) => {
      let lookup = byId.get(id)
      if (lookup === undefined) {
        lookup = this.load(id, scope)
        byId.set(id, lookup)
      }
      return lookup
    }))
  }
}
