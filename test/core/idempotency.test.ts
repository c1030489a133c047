import t from 'tap'
import { errors } from '../../src/errors.js'
import {
  checkIdempotencyKey,
  fingerprintOf,
  Idempotency,
  isStoredStatus,
  ownerOf,
  storeKeyOf,
  type IdempotencyStore,
  type StoreOperation,
  type SubmitAnswer
} from '../../src/core/idempotency.js'
import { MemoryIdempotencyStore } from '../../src/core/idempotency-store.js'
import { ManualClock, until } from '../helpers/gateway.js'

const HOUR = 3_600_000
const TTL = 24 * HOUR
const LEASE = 15_000

/** An upstream stand-in that counts sends and answers from a script; after `hold()` the next send waits for `release()`. */
class Upstream {
  sent = 0
  #answers: Array<SubmitAnswer | Error> = []
  #holding = false
  #release: (() => void) | undefined

  answer (...answers: Array<SubmitAnswer | Error>): void { this.#answers.push(...answers) }

  hold (): void { this.#holding = true }

  release (): void { this.#release?.() }

  readonly send = async (): Promise<SubmitAnswer> => {
    this.sent++
    if (this.#holding) {
      this.#holding = false
      await new Promise<void>((resolve) => { this.#release = resolve })
    }
    const next = this.#answers.shift() ?? { statusCode: 200, body: { code: 1, description: 'Submit success', result: `17000000000000${this.sent}`, properties: {} } }
    if (next instanceof Error) throw next
    return next
  }
}

function machine (opts: { clock?: ManualClock, store?: IdempotencyStore, fallback?: MemoryIdempotencyStore, onStoreError?: (err: unknown, op: StoreOperation) => void } = {}) {
  const clock = opts.clock ?? new ManualClock()
  const memory = new MemoryIdempotencyStore({ maxEntries: 100, now: clock.now })
  return new Idempotency({ store: opts.store ?? memory, fallback: opts.fallback, ttlMs: TTL, leaseMs: LEASE, onStoreError: opts.onStoreError })
}

const submit = (key: string, body: unknown = { prompt: 'a red fox' }, owner = 'shared', action = 'imagine') => ({ owner, action, key, body })

t.test('a key is 1 to 255 printable ASCII characters, taken as sent; anything else is a coded 400', async (t) => {
  t.equal(checkIdempotencyKey(undefined), undefined)
  t.equal(checkIdempotencyKey(null), undefined)
  t.equal(checkIdempotencyKey('a'), 'a')
  t.equal(checkIdempotencyKey('x'.repeat(255)), 'x'.repeat(255))
  t.equal(checkIdempotencyKey('"8e03978e-40d5-43e8-bc93-6894a57f9324"'), '"8e03978e-40d5-43e8-bc93-6894a57f9324"', 'a draft-style quoted key keeps its quotes')
  t.equal(checkIdempotencyKey(' ~ spaced ~ '), ' ~ spaced ~ ')
  const refused = (value: unknown, message: string): void => {
    try {
      checkIdempotencyKey(value)
      t.fail(`${JSON.stringify(value)} was accepted`)
    } catch (err) {
      t.ok(err instanceof errors.IdempotencyKeyInvalid, 'an IdempotencyKeyInvalid error')
      t.equal((err as { statusCode: number }).statusCode, 400)
      t.equal((err as Error).message, `Invalid idempotency key: ${message}`)
    }
  }
  refused('', 'it is empty; send 1 to 255 printable ASCII characters')
  refused('x'.repeat(256), 'it is 256 characters long; at most 255 allowed')
  refused('caf\u00e9', 'character 4 is not printable ASCII (0x20 to 0x7E)')
  refused('tab\there', 'character 4 is not printable ASCII (0x20 to 0x7E)')
  refused(['a', 'b'], 'send it once, as a string')
  refused(42, 'send it once, as a string')
})

t.test('a fingerprint ignores key order and nothing else', async (t) => {
  t.equal(fingerprintOf({ prompt: 'x', state: 's' }), fingerprintOf({ state: 's', prompt: 'x' }))
  t.equal(fingerprintOf({ a: { y: 1, x: [2, { q: 1, p: 2 }] } }), fingerprintOf({ a: { x: [2, { p: 2, q: 1 }], y: 1 } }))
  t.equal(fingerprintOf(undefined), fingerprintOf({}), 'no body is sent as {}')
  t.not(fingerprintOf({ prompt: 'x' }), fingerprintOf({ prompt: 'y' }))
  t.not(fingerprintOf({ n: 1 }), fingerprintOf({ n: '1' }))
  t.not(fingerprintOf({ list: [1, 2] }), fingerprintOf({ list: [2, 1] }), 'array order matters')
})

t.test('the store key hashes the scope: owner, action and key all count, and none is readable in it', async (t) => {
  const base = { owner: ownerOf('cred:abc', 'key:def'), action: 'imagine', key: 'k-1' }
  const id = storeKeyOf(base)
  t.match(id, /^[A-Za-z0-9_-]{43}$/)
  t.not(storeKeyOf({ ...base, owner: ownerOf('cred:abc', undefined) }), id)
  t.not(storeKeyOf({ ...base, owner: ownerOf('cred:xyz', 'key:def') }), id)
  t.not(storeKeyOf({ ...base, action: 'blend' }), id)
  t.not(storeKeyOf({ ...base, key: 'k-2' }), id)
  t.equal(ownerOf('shared', undefined), 'shared')
})

t.test('answers kept are the delivered 2xx and 4xx, except 408 and 429', async (t) => {
  for (const status of [200, 201, 204, 400, 401, 403, 404, 409, 422]) t.equal(isStoredStatus(status), true, `${status} is kept`)
  for (const status of [100, 301, 304, 408, 429, 500, 502, 503, 504]) t.equal(isStoredStatus(status), false, `${status} is not kept`)
})

t.test('the same key twice sends once and gives the same answer twice, the second marked replayed', async (t) => {
  const upstream = new Upstream()
  const idem = machine()
  const first = await idem.run(submit('k'), upstream.send)
  const second = await idem.run(submit('k', { prompt: 'a red fox' }), upstream.send)
  t.equal(upstream.sent, 1)
  t.equal(first.replayed, false)
  t.equal(second.replayed, true)
  t.equal(second.statusCode, first.statusCode)
  t.strictSame(second.body, first.body)
})

t.test('a replayed answer is a copy: changing one does not change what is stored', async (t) => {
  const upstream = new Upstream()
  const idem = machine()
  const first = await idem.run(submit('k'), upstream.send)
  ;(first.body as { code: number }).code = 99
  const second = await idem.run(submit('k'), upstream.send)
  ;(second.body as { code: number }).code = 98
  const third = await idem.run(submit('k'), upstream.send)
  t.equal((third.body as { code: number }).code, 1)
})

t.test('the same key with another body is refused with 422 and sends nothing', async (t) => {
  const upstream = new Upstream()
  const idem = machine()
  await idem.run(submit('k'), upstream.send)
  await t.rejects(idem.run(submit('k', { prompt: 'a blue fox' }), upstream.send), errors.IdempotencyKeyReused)
  await t.rejects(idem.run(submit('k', { prompt: 'a red fox', state: 'x' }), upstream.send), { statusCode: 422, code: 'GW_ERR_IDEMPOTENCY_KEY_REUSED' })
  t.equal(upstream.sent, 1)
})

t.test('while the first request is in flight, the same key gets 409 with Retry-After, then the answer once it is in', async (t) => {
  const upstream = new Upstream()
  const idem = machine()
  upstream.hold()
  const first = idem.run(submit('k'), upstream.send)
  await until(() => upstream.sent === 1)
  await t.rejects(idem.run(submit('k'), upstream.send), { statusCode: 409, code: 'GW_ERR_IDEMPOTENCY_KEY_IN_USE', retryAfter: 1 })
  // The body is checked first: another body under a busy key is still a reuse.
  await t.rejects(idem.run(submit('k', { prompt: 'other' }), upstream.send), errors.IdempotencyKeyReused)
  t.equal(upstream.sent, 1)
  upstream.release()
  const answered = await first
  const replay = await idem.run(submit('k'), upstream.send)
  t.equal(upstream.sent, 1)
  t.strictSame(replay.body, answered.body)
  t.equal(replay.replayed, true)
})

t.test('a 5xx, 408 or 429 answer, a timeout or a connection failure releases the key: the retry goes upstream', async (t) => {
  const upstream = new Upstream()
  const idem = machine()
  upstream.answer(
    { statusCode: 500, body: { description: 'boom' } },
    { statusCode: 429, body: { description: 'slow down' } },
    { statusCode: 408, body: { description: 'timeout' } },
    new errors.UpstreamTimeout(10_000),
    new errors.UpstreamError('connection failed (ECONNRESET)')
  )
  t.equal((await idem.run(submit('k'), upstream.send)).statusCode, 500)
  t.equal((await idem.run(submit('k'), upstream.send)).statusCode, 429)
  t.equal((await idem.run(submit('k'), upstream.send)).statusCode, 408)
  await t.rejects(idem.run(submit('k'), upstream.send), errors.UpstreamTimeout)
  await t.rejects(idem.run(submit('k'), upstream.send), errors.UpstreamError)
  const created = await idem.run(submit('k'), upstream.send)
  t.equal(created.statusCode, 200)
  t.equal(created.replayed, false)
  t.equal(upstream.sent, 6, 'every attempt reached upstream')
  t.equal((await idem.run(submit('k'), upstream.send)).replayed, true)
  t.equal(upstream.sent, 6)
})

t.test('a 4xx answer is kept and replayed like a 2xx', async (t) => {
  const upstream = new Upstream()
  const idem = machine()
  upstream.answer({ statusCode: 400, body: { description: 'prompt_is_required ', type: 'upstream_error', code: 4 } })
  const first = await idem.run(submit('k', {}), upstream.send)
  const second = await idem.run(submit('k', {}), upstream.send)
  t.equal(upstream.sent, 1)
  t.strictSame(second, { statusCode: 400, body: { description: 'prompt_is_required ', type: 'upstream_error', code: 4 }, replayed: true })
  t.equal(first.replayed, false)
})

t.test('keys are scoped: another owner or another action with the same key submits again', async (t) => {
  const upstream = new Upstream()
  const idem = machine()
  await idem.run(submit('k', { prompt: 'x' }, 'cred:tenant-a'), upstream.send)
  await idem.run(submit('k', { prompt: 'x' }, 'cred:tenant-b'), upstream.send)
  await idem.run(submit('k', { prompt: 'x' }, ownerOf('shared', 'key:client-1')), upstream.send)
  await idem.run(submit('k', { prompt: 'x' }, ownerOf('shared', 'key:client-2')), upstream.send)
  await idem.run(submit('k', { prompt: 'x' }, 'cred:tenant-a', 'describe'), upstream.send)
  t.equal(upstream.sent, 5)
  t.equal((await idem.run(submit('k', { prompt: 'x' }, 'cred:tenant-b'), upstream.send)).replayed, true)
  t.equal(upstream.sent, 5)
})

t.test('an answer is kept for the TTL; then the key is new again', async (t) => {
  const clock = new ManualClock()
  const upstream = new Upstream()
  const idem = machine({ clock })
  await idem.run(submit('k'), upstream.send)
  clock.advance(TTL)
  t.equal((await idem.run(submit('k'), upstream.send)).replayed, true)
  clock.advance(1)
  t.equal((await idem.run(submit('k', { prompt: 'another body is fine now' }), upstream.send)).replayed, false)
  t.equal(upstream.sent, 2)
})

t.test('a marker left by a request that never finished (a crash) ends with its lease', async (t) => {
  const clock = new ManualClock()
  const store = new MemoryIdempotencyStore({ maxEntries: 10, now: clock.now })
  const idem = machine({ clock, store })
  const upstream = new Upstream()
  const key = storeKeyOf(submit('k'))
  await store.claim(key, { state: 'in-flight', fingerprint: fingerprintOf({ prompt: 'a red fox' }), token: 'crashed' }, LEASE)
  await t.rejects(idem.run(submit('k'), upstream.send), errors.IdempotencyKeyInUse)
  clock.advance(LEASE + 1)
  t.equal((await idem.run(submit('k'), upstream.send)).replayed, false)
  t.equal(upstream.sent, 1)
})

/** A store that fails every call while `down`, as Redis does with no connection. */
class FlakyStore implements IdempotencyStore {
  down = false
  readonly inner: MemoryIdempotencyStore
  constructor (clock: ManualClock) { this.inner = new MemoryIdempotencyStore({ maxEntries: 100, now: clock.now }) }
  #check (): void { if (this.down) throw new Error('Connection is closed.') }
  async claim (...args: Parameters<IdempotencyStore['claim']>) { this.#check(); return this.inner.claim(...args) }
  async complete (...args: Parameters<IdempotencyStore['complete']>) { this.#check(); return this.inner.complete(...args) }
  async release (...args: Parameters<IdempotencyStore['release']>) { this.#check(); return this.inner.release(...args) }
}

t.test('with the shared store down, keys are kept in the fallback: a retry on this process is still answered once', async (t) => {
  const clock = new ManualClock()
  const shared = new FlakyStore(clock)
  const fallback = new MemoryIdempotencyStore({ maxEntries: 100, now: clock.now })
  const failures: StoreOperation[] = []
  const idem = machine({ clock, store: shared, fallback, onStoreError: (_err, op) => failures.push(op) })
  const upstream = new Upstream()
  shared.down = true
  const first = await idem.run(submit('k'), upstream.send)
  const second = await idem.run(submit('k'), upstream.send)
  t.equal(upstream.sent, 1)
  t.equal(second.replayed, true)
  t.strictSame(second.body, first.body)
  t.strictSame(failures, ['claim'], 'the failure was reported; the replay came from the fallback without asking the shared store')

  // Back up: the key claimed during the outage is still honoured here, though the shared store never saw it.
  shared.down = false
  t.equal((await idem.run(submit('k'), upstream.send)).replayed, true)
  await t.rejects(idem.run(submit('k', { prompt: 'other' }), upstream.send), errors.IdempotencyKeyReused)
  t.equal(upstream.sent, 1)
  t.equal(shared.inner.size, 0)
})

t.test('when the shared store fails after the claim, the delivered answer is kept in the fallback', async (t) => {
  const clock = new ManualClock()
  const shared = new FlakyStore(clock)
  const fallback = new MemoryIdempotencyStore({ maxEntries: 100, now: clock.now })
  const failures: StoreOperation[] = []
  const idem = machine({ clock, store: shared, fallback, onStoreError: (_err, op) => failures.push(op) })
  const upstream = new Upstream()
  upstream.hold()
  const first = idem.run(submit('k'), upstream.send)
  await until(() => upstream.sent === 1)
  t.equal(shared.inner.size, 1, 'claimed in the shared store')
  shared.down = true
  upstream.release()
  const answered = await first
  t.strictSame(failures, ['complete'])
  const retry = await idem.run(submit('k'), upstream.send)
  t.equal(retry.replayed, true)
  t.strictSame(retry.body, answered.body)
  t.equal(upstream.sent, 1)
})

t.test('when releasing fails, the marker lives out its lease: retries get 409, never a second submit, then go upstream', async (t) => {
  const clock = new ManualClock()
  const shared = new FlakyStore(clock)
  const failures: StoreOperation[] = []
  const idem = machine({ clock, store: shared, fallback: new MemoryIdempotencyStore({ maxEntries: 100, now: clock.now }), onStoreError: (_err, op) => failures.push(op) })
  const upstream = new Upstream()
  upstream.hold()
  upstream.answer({ statusCode: 502, body: {} })
  const first = idem.run(submit('k'), upstream.send)
  await until(() => upstream.sent === 1)
  shared.down = true
  upstream.release()
  t.equal((await first).statusCode, 502)
  t.strictSame(failures, ['release'])
  shared.down = false
  await t.rejects(idem.run(submit('k'), upstream.send), errors.IdempotencyKeyInUse)
  clock.advance(LEASE + 1)
  t.equal((await idem.run(submit('k'), upstream.send)).statusCode, 200)
  t.equal(upstream.sent, 2)
})

t.test('without a fallback a failing store fails the request, and nothing is sent', async (t) => {
  const shared = new FlakyStore(new ManualClock())
  shared.down = true
  const idem = machine({ store: shared })
  const upstream = new Upstream()
  await t.rejects(idem.run(submit('k'), upstream.send), /Connection is closed/)
  t.equal(upstream.sent, 0)
})

t.test('the memory store is bounded: past maxEntries the least recently used key goes', async (t) => {
  const clock = new ManualClock()
  const store = new MemoryIdempotencyStore({ maxEntries: 2, now: clock.now })
  const idem = new Idempotency({ store, ttlMs: TTL, leaseMs: LEASE })
  const upstream = new Upstream()
  await idem.run(submit('a'), upstream.send)
  await idem.run(submit('b'), upstream.send)
  await idem.run(submit('c'), upstream.send)
  t.equal(store.size, 2)
  t.equal((await idem.run(submit('c'), upstream.send)).replayed, true)
  t.equal((await idem.run(submit('b'), upstream.send)).replayed, true)
  t.equal((await idem.run(submit('a'), upstream.send)).replayed, false, 'the oldest key was evicted')
  t.equal(upstream.sent, 4)
})
