import type { Redis } from 'ioredis'
import type { DoneEntry, IdempotencyEntry, InFlightEntry, IdempotencyStore } from '../core/idempotency.js'

/* Idempotency entries in Redis, shared by the replicas (src/core/idempotency.ts has the state machine). */

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
