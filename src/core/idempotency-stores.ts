import { LRUCache } from 'lru-cache'
import type { Redis } from 'ioredis'
import type { DoneEntry, IdempotencyEntry, InFlightEntry, IdempotencyStore, LocalIdempotencyStore } from './idempotency.js'

/*
 * The two homes of idempotency entries (src/core/idempotency.ts): this
 * process's memory, and Redis shared by the replicas.
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

// Compare-and-set on the marker's exact text: a marker whose lease ran out may since belong to another request.
const COMPLETE = `local held = redis.call('GET', KEYS[1])
if held == false or held == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`

/** Claims retried when the key is released or expires between SET NX and GET. */
const CLAIM_ATTEMPTS = 3

/**
 * Entries in the shared tier, so a retry that lands on another replica is
 * recognised: `SET NX PX` claims a key for one request across all replicas,
 * and a small script swaps the marker for the answer only while it is still
 * this request's. Keys are `<REDIS_PREFIX>idem:<hash>`; values are JSON.
 * Commands fail fast while Redis is down (src/plugins/redis.ts), and the
 * state machine falls back to memory.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  readonly #client: Pick<Redis, 'set' | 'get' | 'eval'>
  readonly #prefix: string

  constructor (client: Pick<Redis, 'set' | 'get' | 'eval'>, prefix: string) {
    this.#client = client
    this.#prefix = prefix + 'idem:'
  }

  async claim (key: string, marker: InFlightEntry, leaseMs: number): Promise<IdempotencyEntry | undefined> {
    const redisKey = this.#prefix + key
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      if (await this.#client.set(redisKey, JSON.stringify(marker), 'PX', leaseMs, 'NX') === 'OK') return undefined
      const held = await this.#client.get(redisKey)
      if (held !== null) return parseEntry(held)
    }
    throw new Error(`idempotency key changed hands ${CLAIM_ATTEMPTS} times during one claim`)
  }

  async complete (key: string, marker: InFlightEntry, done: DoneEntry, ttlMs: number): Promise<void> {
    await this.#client.eval(COMPLETE, 1, this.#prefix + key, JSON.stringify(marker), JSON.stringify(done), ttlMs)
  }

  async release (key: string, marker: InFlightEntry): Promise<void> {
    await this.#client.eval(RELEASE, 1, this.#prefix + key, JSON.stringify(marker))
  }
}

/** A stored value, checked: another version's or a damaged entry is an error, so the state machine falls back. */
function parseEntry (text: string): IdempotencyEntry {
  const entry = JSON.parse(text) as Record<string, unknown> | null
  if (typeof entry?.fingerprint === 'string') {
    if (entry.state === 'in-flight' && typeof entry.token === 'string') return { state: 'in-flight', fingerprint: entry.fingerprint, token: entry.token }
    if (entry.state === 'done' && typeof entry.statusCode === 'number') return { state: 'done', fingerprint: entry.fingerprint, statusCode: entry.statusCode, body: entry.body }
  }
  throw new Error('unreadable idempotency entry in Redis')
}
