import type { Dispatcher } from 'undici'
import type { Batcher } from './batcher.js'
import type { Scope } from './scope.js'
import { ownerOf, type Idempotency, type SubmitAnswer, type SubmitOutcome } from './idempotency.js'
import { isCreatedCode } from './task-rules.js'
import { newerEntry, type CacheEntry, type TaskCache } from './task-cache.js'
import type { SharedFlight } from './shared-flight.js'

/** The cache entry behind an answer: surfaces compare it by identity and read its freshness, nothing else. */
export type { CacheEntry as LookupEntry } from './task-cache.js'
import { isUpstreamRefusal, type GatewayError } from '../errors.js'
import type { UpstreamClient } from '../upstream/client.js'
import type { StoredTask } from './stored-task.js'

/** Applies `fn` to a value that may or may not be a promise, without a promise when it is not. */
export function whenLoaded<T, R> (value: T | Promise<T>, fn: (loaded: T) => R): R | Promise<R> {
  return value instanceof Promise ? value.then(fn) : fn(value)
}

/** How a lookup was answered; REST puts it in `x-cache`. */
export type CacheStatus = 'hit' | 'miss' | 'stale'

/**
 * An answer: the stored task (`null` when upstream does not know the id) and
 * how fresh it is, or the error that stands for it. `entry` is the cache
 * entry the answer is, when the cache holds it: a later lookup that finds the
 * same entry object knows the task has not changed since.
 */
export type Lookup =
  | { readonly stored: StoredTask | null, readonly cache: CacheStatus, readonly ageMs: number, readonly entry: CacheEntry | undefined, readonly error?: undefined }
  | { readonly stored?: undefined, readonly error: GatewayError, readonly cache?: undefined, readonly entry?: undefined }

export interface TaskLoaderOptions {
  cache: TaskCache
  batcher: Batcher<StoredTask>
  /** Relays submits and images, which are not batched reads. */
  upstream: Pick<UpstreamClient, 'submit' | 'image'>
  now: () => number
  onCache?: (status: CacheStatus) => void
  /** The shared tier (REDIS_URL): L1 misses read L2, under cross-replica single flight, before the batcher. */
  shared?: SharedFlight
  /** Runs submits that carry an idempotency key; without it such a submit is refused. */
  idempotency?: Idempotency
}

export interface SubmitOptions {
  /** A key already checked by `checkIdempotencyKey`; undefined: an ordinary submit. */
  readonly idempotencyKey?: string | undefined
  /** The client key's identity (`key:<digest>`) when client keys are on: keys are scoped to it within the partition. */
  readonly client?: string | undefined
}

/**
 * The one way every surface reaches tasks: reads go to the cache (L1) first,
 * then, with a shared tier, to L2 and the other replicas' fetches in flight
 * (see SharedFlight), then the batcher. An answer from either cache tier is
 * a `hit`. When upstream fails (5xx, 429, timeout, connection error,
 * unusable body, open breaker, overload), a cached task (L1's or L2's, the
 * newer) that is past its freshness but still inside its stale window is
 * served instead, marked `stale` (stale-if-error, RFC 5861). Upstream
 * refusing the credential (a 4xx other than 429) is never covered up that
 * way. Submits and images are relayed to upstream as
 * they are; a submit also drops what the cache knows about the new id.
 */
export class TaskLoader {
  readonly #cache: TaskCache
  readonly #batcher: Batcher<StoredTask>
  readonly #upstream: Pick<UpstreamClient, 'submit' | 'image'>
  readonly #now: () => number
  readonly #onCache: ((status: CacheStatus) => void) | undefined
  readonly #shared: SharedFlight | undefined
  readonly #idempotency: Idempotency | undefined

  constructor (opts: TaskLoaderOptions) {
    this.#shared = opts.shared
    this.#cache = opts.cache
    this.#batcher = opts.batcher
    this.#upstream = opts.upstream
    this.#now = opts.now
    this.#onCache = opts.onCache
    this.#idempotency = opts.idempotency
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
      return { stored: entry.stored, cache: 'hit', ageMs: now - entry.storedAt, entry }
    }
    this.#onCache?.('miss')
    return this.#shared === undefined ? this.#fetch(id, scope, entry) : this.#fetchShared(this.#shared, id, scope, entry)
  }

  async #fetch (id: string, scope: Scope, entry: CacheEntry | undefined): Promise<Lookup> {
    try {
      const stored = await this.#batcher.load(id, scope)
      // The batcher stored the answer before this lookup resumed; the entry is that answer unless it was evicted.
      const fresh = this.#cache.get(scope.partition, id)
      return { stored, cache: 'miss', ageMs: 0, entry: fresh?.stored === stored ? fresh : undefined }
    } catch (err) {
      // A refusal (401, 403, other 4xx) is an answer, not a failure: a stale copy would hide it.
      if (entry?.stored != null && !isUpstreamRefusal(err)) {
        this.#onCache?.('stale')
        return { stored: entry.stored, cache: 'stale', ageMs: this.#now() - entry.storedAt, entry }
      }
      return { error: err as GatewayError }
    }
  }

  async #fetchShared (shared: SharedFlight, id: string, scope: Scope, entry: CacheEntry | undefined): Promise<Lookup> {
    const answer = await shared.load(id, scope)
    const now = this.#now()
    if (answer.error === undefined) {
      const fetched = answer.entry
      // The flight put the entry in L1 unless L1 already held a newer one (or is off).
      const current = this.#cache.peek(scope.partition, id) === fetched ? fetched : undefined
      return answer.hit
        ? { stored: fetched.stored, cache: 'hit', ageMs: Math.max(0, now - fetched.storedAt), entry: current }
        : { stored: fetched.stored, cache: 'miss', ageMs: 0, entry: current }
    }
    // A refusal (401, 403, other 4xx) is an answer, not a failure: a stale copy would hide it.
    if (isUpstreamRefusal(answer.error)) return { error: answer.error }
    // L2's copy may be all there is (fetched on another replica), or newer than L1's.
    const stale = newerEntry(entry, answer.stale)
    if (stale?.stored != null && this.#cache.keepOf(stale.stored, stale.freshUntil - now) > 0) {
      this.#onCache?.('stale')
      return { stored: stale.stored, cache: 'stale', ageMs: now - stale.storedAt, entry: stale === entry ? entry : undefined }
    }
    return { error: answer.error }
  }

  /**
   * Relays `POST /mj/submit/{action}`, never retried: a submit is not
   * idempotent. With an idempotency key it goes upstream at most once per key
   * (src/core/idempotency.ts), and a repeat gets the stored answer, marked
   * `replayed`. A created task may be remembered as unknown from a lookup a
   * moment ago; that memory is dropped so the next lookup asks upstream.
   */
  async submit (action: string, body: unknown, scope: Scope, opts: SubmitOptions = {}): Promise<SubmitOutcome> {
    const payload = body ?? {}
    const send = (): Promise<SubmitAnswer> => this.#upstream.submit(action, JSON.stringify(payload), scope.credential)
    let outcome: SubmitOutcome
    if (opts.idempotencyKey === undefined) {
      outcome = { ...await send(), replayed: false }
    } else {
      if (this.#idempotency === undefined) throw new Error('TaskLoader: an idempotency key was given but no idempotency store is configured')
      outcome = await this.#idempotency.run({ owner: ownerOf(scope.partition, opts.client), action, key: opts.idempotencyKey, body: payload }, send)
    }
    const created = outcome.body as { code?: unknown, result?: unknown } | null
    if (!outcome.replayed && isCreatedCode(created?.code) && typeof created?.result === 'string') {
      this.#cache.delete(scope.partition, created.result)
      this.#shared?.forget(scope.partition, created.result)
    }
    return outcome
  }

  /** Relays a task's image; the caller streams the body. */
  image (id: string, scope: Scope): Promise<Dispatcher.ResponseData> {
    return this.#upstream.image(id, scope.credential)
  }

  /**
   * True while `entry` is still the cache's fresh answer for the id: the task
   * has not changed, expired or been evicted since a lookup returned it. An
   * answer built from lookups (a GraphQL response) may be reused while this holds.
   */
  isCurrent (partition: string, id: string, entry: CacheEntry, now = this.#now()): boolean {
    return now < entry.freshUntil && this.#cache.peek(partition, id) === entry
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
