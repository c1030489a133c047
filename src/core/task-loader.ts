import type { Dispatcher } from 'undici'
import type { Batcher } from './batcher.js'
import type { Scope } from './scope.js'
import { isCreatedCode } from './task-rules.js'
import type { CacheEntry, TaskCache } from './task-cache.js'
import { isUpstreamRefusal, type GatewayError } from '../errors.js'
import type { UpstreamClient } from '../upstream/client.js'
import type { UpstreamTask } from '../upstream/types.js'

/** Applies `fn` to a value that may or may not be a promise, without a promise when it is not. */
export function whenLoaded<T, R> (value: T | Promise<T>, fn: (loaded: T) => R): R | Promise<R> {
  return value instanceof Promise ? value.then(fn) : fn(value)
}

/** How a lookup was answered; REST puts it in `x-cache`. */
export type CacheStatus = 'hit' | 'miss' | 'stale'

export type Lookup =
  | { readonly task: UpstreamTask | null, readonly cache: CacheStatus, readonly ageMs: number, readonly error?: undefined }
  | { readonly task?: undefined, readonly error: GatewayError, readonly cache?: undefined }

export interface TaskLoaderOptions {
  cache: TaskCache
  batcher: Batcher
  /** Relays submits and images, which are not batched reads. */
  upstream: Pick<UpstreamClient, 'submit' | 'image'>
  now: () => number
  onCache?: (status: CacheStatus) => void
}

/**
 * The one way every surface reaches tasks: reads go to the cache first, then
 * the batcher. When the batcher fails (5xx, 429, timeout, connection error,
 * unusable body, open breaker, overload), a cached task that is past its
 * freshness but still inside its stale window is served instead, marked
 * `stale` (stale-if-error, RFC 5861). Upstream refusing the credential
 * (a 4xx other than 429) is never covered up that way. Submits and images are relayed to upstream as
 * they are; a submit also drops what the cache knows about the new id.
 */
export class TaskLoader {
  readonly #cache: TaskCache
  readonly #batcher: Batcher
  readonly #upstream: Pick<UpstreamClient, 'submit' | 'image'>
  readonly #now: () => number
  readonly #onCache: ((status: CacheStatus) => void) | undefined

  constructor (opts: TaskLoaderOptions) {
    this.#cache = opts.cache
    this.#batcher = opts.batcher
    this.#upstream = opts.upstream
    this.#now = opts.now
    this.#onCache = opts.onCache
  }

  /**
   * One lookup. A fresh cache hit comes back as a plain value, not a promise:
   * the hit path is the hot one, and a hot-path caller can answer it without
   * a turn of the microtask queue. Anything else is a promise; `await` takes both.
   */
  load (id: string, scope: Scope): Lookup | Promise<Lookup> {
    const entry = this.#cache.get(scope.partition, id)
    const now = this.#now()
    if (entry !== undefined && this.#cache.isFresh(entry, now)) {
      this.#onCache?.('hit')
      return { task: entry.task, cache: 'hit', ageMs: now - entry.storedAt }
    }
    this.#onCache?.('miss')
    return this.#fetch(id, scope, entry)
  }

  async #fetch (id: string, scope: Scope, entry: CacheEntry | undefined): Promise<Lookup> {
    try {
      return { task: await this.#batcher.load(id, scope), cache: 'miss', ageMs: 0 }
    } catch (err) {
      // A refusal (401, 403, other 4xx) is an answer, not a failure: a stale copy would hide it.
      if (entry?.task != null && !isUpstreamRefusal(err)) {
        this.#onCache?.('stale')
        return { task: entry.task, cache: 'stale', ageMs: this.#now() - entry.storedAt }
      }
      return { error: err as GatewayError }
    }
  }

  /**
   * Relays `POST /mj/submit/{action}`, never retried: a submit is not
   * idempotent. A created task may be remembered as unknown from a lookup a
   * moment ago; that memory is dropped so the next lookup asks upstream.
   */
  async submit (action: string, body: unknown, scope: Scope): Promise<{ statusCode: number, body: unknown }> {
    const answer = await this.#upstream.submit(action, JSON.stringify(body ?? {}), scope.credential)
    const created = answer.body as { code?: unknown, result?: unknown } | null
    if (isCreatedCode(created?.code) && typeof created?.result === 'string') this.#cache.delete(scope.partition, created.result)
    return answer
  }

  /** Relays a task's image; the caller streams the body. */
  image (id: string, scope: Scope): Promise<Dispatcher.ResponseData> {
    return this.#upstream.image(id, scope.credential)
  }

  /** Lookups in request order; a repeated id shares one lookup. A plain array when every id was a fresh hit. */
  loadMany (ids: readonly string[], scope: Scope): Lookup[] | Promise<Lookup[]> {
    const byId = new Map<string, Lookup | Promise<Lookup>>()
    let pending = false
    const lookups = ids.map((id) => {
      let lookup = byId.get(id)
      if (lookup === undefined) {
        lookup = this.load(id, scope)
        byId.set(id, lookup)
        pending ||= lookup instanceof Promise
      }
      return lookup
    })
    return pending ? Promise.all(lookups) : lookups as Lookup[]
  }
}
