import { createHash, randomUUID } from 'node:crypto'
import { errors, type GatewayError } from '../errors.js'
import { canonical } from './task-identity.js'

/*
 * Idempotency keys on submits, after the IETF draft "The Idempotency-Key HTTP
 * Header Field": the first request with a key goes upstream, and upstream's
 * answer is kept, so a retry with the same key gets that answer again instead
 * of a second paid task. Framework-free: the surfaces check the key, the task
 * loader runs the state machine, and stores (src/core/idempotency-store.ts in memory, src/shared/idempotency-store.ts in Redis)
 * keep the entries in memory or in Redis.
 */

/**
 * Upstream's answer to a submit, as the relay passes it on. A 5xx never gets
 * here: the upstream client throws it as a coded error, so its key is released.
 */
export interface SubmitAnswer {
  readonly statusCode: number
  readonly body: unknown
  /** Upstream's `Retry-After` on a 429, in seconds; such an answer is never stored, so a replay has none. */
  readonly retryAfter?: number
}

/** An answer, and whether it is a stored one given again for a repeated key (no upstream call made). */
export interface SubmitOutcome extends SubmitAnswer {
  readonly replayed: boolean
}

/** The key is claimed and its submit is on its way; `token` tells this claim from a later one of the same key. */
export interface InFlightEntry {
  readonly state: 'in-flight'
  readonly fingerprint: string
  readonly token: string
}

/** The key's submit was answered; the answer is given again to a retry. */
export interface DoneEntry {
  readonly state: 'done'
  readonly fingerprint: string
  readonly statusCode: number
  readonly body: unknown
}

export type IdempotencyEntry = InFlightEntry | DoneEntry

/**
 * Where entries live. Each operation is atomic for its key, so two replicas
 * sharing a store cannot both claim one key. Entries never hold a credential:
 * the key's scope is hashed into the store key, and the body is only hashed.
 */
export interface IdempotencyStore {
  /** Sets `marker` for `leaseMs` unless the key is taken. Resolves undefined when the claim is ours, else to what holds the key. */
  claim (key: string, marker: InFlightEntry, leaseMs: number): Promise<IdempotencyEntry | undefined>
  /** Replaces our marker by the answer for `ttlMs` (or sets it when the marker is gone); another claim is left alone. */
  complete (key: string, marker: InFlightEntry, done: DoneEntry, ttlMs: number): Promise<void>
  /** Drops our marker, so the next request with this key goes upstream; another claim is left alone. */
  release (key: string, marker: InFlightEntry): Promise<void>
}

/** A store this process holds itself; it can be read without a round trip. */
export interface LocalIdempotencyStore extends IdempotencyStore {
  peek (key: string): IdempotencyEntry | undefined
}

export const MAX_IDEMPOTENCY_KEY_LENGTH = 255

/**
 * A key as a client sent it (header or GraphQL argument): undefined when
 * absent, else 1 to 255 printable ASCII characters (0x20 to 0x7E), used
 * as-is (a draft-style quoted key keeps its quotes). Anything else is a 400.
 */
export function checkIdempotencyKey (value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw new errors.IdempotencyKeyInvalid('send it once, as a string')
  if (value.length === 0) throw new errors.IdempotencyKeyInvalid(`it is empty; send 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters`)
  if (value.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new errors.IdempotencyKeyInvalid(`it is ${value.length} characters long; at most ${MAX_IDEMPOTENCY_KEY_LENGTH} allowed`)
  }
  const bad = value.search(/[^\x20-\x7e]/)
  if (bad >= 0) throw new errors.IdempotencyKeyInvalid(`character ${bad + 1} is not printable ASCII (0x20 to 0x7E)`)
  return value
}

/** What a submit is recognised by: a hash of its body with object keys sorted, so key order does not matter. */
export function fingerprintOf (body: unknown): string {
  return createHash('sha256').update(JSON.stringify(canonical(body ?? {}))).digest('base64url')
}

/** Whose keys these are: the credential's partition, plus the client key's identity when client keys are on. */
export function ownerOf (partition: string, client: string | undefined): string {
  return client === undefined ? partition : partition + '\0' + client
}

/** One request's key, in its scope. */
export interface IdempotentSubmit {
  /** From `ownerOf`: two tenants (or two client keys) using one key never meet. */
  readonly owner: string
  readonly action: string
  readonly key: string
  /** The body sent upstream; only its fingerprint is kept. */
  readonly body: unknown
}

/** The store key of a request: a hash, so neither the owner's digests nor the client's key text end up in it. */
export function storeKeyOf (submit: Pick<IdempotentSubmit, 'owner' | 'action' | 'key'>): string {
  return createHash('sha256').update(`${submit.owner}\0${submit.action}\0${submit.key}`).digest('base64url')
}

/**
 * Answers worth giving again: what upstream delivered, 2xx and 4xx. Not 408
 * and 429, which say "try again later" and mean nothing was done; not 5xx,
 * after which a retry must reach upstream again.
 */
export function isStoredStatus (statusCode: number): boolean {
  return statusCode >= 200 && statusCode < 500 && (statusCode < 300 || statusCode >= 400) && statusCode !== 408 && statusCode !== 429
}

export type StoreOperation = 'claim' | 'complete' | 'release'

export interface IdempotencyOptions {
  store: IdempotencyStore
  /**
   * This process's own store, used when `store` fails (Redis down), and read
   * first, so a key claimed here during an outage is still honoured here after it.
   */
  fallback?: LocalIdempotencyStore
  /** How long an answer is kept (IDEMPOTENCY_TTL_MS). */
  ttlMs: number
  /** How long an in-flight marker lives should its request never finish (a crash): past the submit deadline. */
  leaseMs: number
  /** Told when the store fails and the fallback is used instead. */
  onStoreError?: (err: unknown, operation: StoreOperation) => void
}

/**
 * The state machine. A key is absent, in flight or done:
 * - absent: claimed (in flight), the submit goes upstream;
 * - in flight: 409 GW_ERR_IDEMPOTENCY_KEY_IN_USE, nothing sent (the draft's
 *   and Stripe's answer; waiting would hold a connection for up to the upstream deadline);
 * - done: the stored answer, replayed.
 * A different body under a key already seen is 422 GW_ERR_IDEMPOTENCY_KEY_REUSED.
 * After a 5xx, 408, 429, a timeout or a connection failure the key is
 * released, so a retry goes upstream again.
 */
export class Idempotency {
  readonly #store: IdempotencyStore
  readonly #fallback: LocalIdempotencyStore | undefined
  readonly #ttlMs: number
  readonly #leaseMs: number
  readonly #onStoreError: ((err: unknown, operation: StoreOperation) => void) | undefined

  constructor (opts: IdempotencyOptions) {
    this.#store = opts.store
    this.#fallback = opts.fallback
    this.#ttlMs = opts.ttlMs
    this.#leaseMs = opts.leaseMs
    this.#onStoreError = opts.onStoreError
  }

  /** Runs `send` at most once per key and scope within the TTL. */
  async run (submit: IdempotentSubmit, send: () => Promise<SubmitAnswer>): Promise<SubmitOutcome> {
    const key = storeKeyOf(submit)
    const fingerprint = fingerprintOf(submit.body)
    const marker: InFlightEntry = { state: 'in-flight', fingerprint, token: randomUUID() }
    const { store, held } = await this.#claim(key, marker)
    if (held !== undefined) {
      if (held.fingerprint !== fingerprint) throw new errors.IdempotencyKeyReused()
      if (held.state === 'in-flight') {
        const err: GatewayError = new errors.IdempotencyKeyInUse()
        err.retryAfter = 1
        throw err
      }
      return { statusCode: held.statusCode, body: held.body, replayed: true }
    }
    let answer: SubmitAnswer
    try {
      answer = await send()
    } catch (err) {
      await this.#release(store, key, marker)
      throw err
    }
    if (isStoredStatus(answer.statusCode)) {
      await this.#complete(store, key, marker, { state: 'done', fingerprint, statusCode: answer.statusCode, body: answer.body })
    } else {
      await this.#release(store, key, marker)
    }
    return { ...answer, replayed: false }
  }

  async #claim (key: string, marker: InFlightEntry): Promise<{ store: IdempotencyStore, held: IdempotencyEntry | undefined }> {
    const fallback = this.#fallback
    const local = fallback?.peek(key)
    if (local !== undefined) return { store: fallback!, held: local }
    try {
      return { store: this.#store, held: await this.#store.claim(key, marker, this.#leaseMs) }
    } catch (err) {
      if (fallback === undefined) throw err
      this.#onStoreError?.(err, 'claim')
      return { store: fallback, held: await fallback.claim(key, marker, this.#leaseMs) }
    }
  }

  async #complete (store: IdempotencyStore, key: string, marker: InFlightEntry, done: DoneEntry): Promise<void> {
    try {
      await store.complete(key, marker, done, this.#ttlMs)
    } catch (err) {
      this.#onStoreError?.(err, 'complete')
      // The answer was delivered: keep it here at least, so a retry on this replica is still answered from it.
      if (this.#fallback !== undefined && store !== this.#fallback) await this.#fallback.complete(key, marker, done, this.#ttlMs)
    }
  }

  async #release (store: IdempotencyStore, key: string, marker: InFlightEntry): Promise<void> {
    try {
      await store.release(key, marker)
    } catch (err) {
      // The marker then lives out its lease: retries get 409 until it ends, never a second submit.
      this.#onStoreError?.(err, 'release')
    }
  }
}
