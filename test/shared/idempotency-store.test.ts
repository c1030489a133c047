import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { MemoryIdempotencyStore } from '../../src/core/idempotency-store.js'
import { RedisIdempotencyStore } from '../../src/shared/idempotency-store.js'
import type { DoneEntry, IdempotencyStore, InFlightEntry } from '../../src/core/idempotency.js'
import { redisOptions } from '../../src/plugins/redis.js'
import { ManualClock } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'

// One Redis for the file; each test gets a prefix of its own.
const shared = await startRedis(t)
let tests = 0
const mine: InFlightEntry = { state: 'in-flight', fingerprint: 'fp-1', token: 'token-mine' }
const theirs: InFlightEntry = { state: 'in-flight', fingerprint: 'fp-1', token: 'token-theirs' }
const done: DoneEntry = { state: 'done', fingerprint: 'fp-1', statusCode: 200, body: { code: 1, description: 'Submit success', result: '1750000000000123', properties: {} } }

async function redisClient (t: Test, url = shared.url): Promise<{ client: Redis, prefix: string }> {
  const client = new Redis(url, redisOptions(2_000))
  await client.connect()
  t.teardown(() => client.disconnect())
  return { client, prefix: `test${++tests}:` }
}

/** What every store must do, run against each of them. */
function contract (name: string, make: (t: Test) => Promise<IdempotencyStore>): void {
  t.test(`${name}: one claim wins; the others see what holds the key`, async (t) => {
    const store = await make(t)
    t.equal(await store.claim('k', mine, 15_000), undefined, 'the first claim is ours')
    t.strictSame(await store.claim('k', theirs, 15_000), mine, 'a second claim sees the in-flight marker')
    t.equal(await store.claim('other', theirs, 15_000), undefined, 'keys are independent')
  })

  t.test(`${name}: complete swaps our marker for the answer, and the answer is read back whole`, async (t) => {
    const store = await make(t)
    await store.claim('k', mine, 15_000)
    await store.complete('k', mine, done, 60_000)
    t.strictSame(await store.claim('k', theirs, 15_000), done)
  })

  t.test(`${name}: complete and release leave another request's claim alone`, async (t) => {
    const store = await make(t)
    await store.claim('k', theirs, 15_000)
    await store.complete('k', mine, done, 60_000)
    t.strictSame(await store.claim('k', mine, 15_000), theirs, 'their marker is still there')
    await store.release('k', mine)
    t.strictSame(await store.claim('k', mine, 15_000), theirs)
    await store.release('k', theirs)
    t.equal(await store.claim('k', mine, 15_000), undefined, 'released by its owner, the key is free')
  })

  t.test(`${name}: release never drops an answer`, async (t) => {
    const store = await make(t)
    await store.claim('k', mine, 15_000)
    await store.complete('k', mine, done, 60_000)
    await store.release('k', mine)
    t.strictSame(await store.claim('k', theirs, 15_000), done)
  })

  t.test(`${name}: an answer whose marker has expired is still stored`, async (t) => {
    const store = await make(t)
    await store.complete('k', mine, done, 60_000)
    t.strictSame(await store.claim('k', theirs, 15_000), done)
  })
}

contract('memory store', async () => new MemoryIdempotencyStore({ maxEntries: 100, now: new ManualClock().now }))
contract('Redis store', async (t) => {
  const { client, prefix } = await redisClient(t)
  return new RedisIdempotencyStore(client, prefix)
})

t.test('Redis store: keys live under REDIS_PREFIX + idem:, the marker for its lease and the answer for the TTL', async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisIdempotencyStore(client, prefix)
  await store.claim('abc', mine, 15_000)
  const key = `${prefix}idem:abc`
  t.strictSame(await client.keys(`${prefix}*`), [key])
  const lease = await client.pttl(key)
  t.ok(lease > 0 && lease <= 15_000, `the marker expires with its lease (PTTL ${lease})`)
  await store.complete('abc', mine, done, 86_400_000)
  const ttl = await client.pttl(key)
  t.ok(ttl > 15_000 && ttl <= 86_400_000, `the answer expires with the TTL (PTTL ${ttl})`)
  t.strictSame(JSON.parse((await client.get(key))!), done, 'stored as JSON')
  await store.release('abc', mine)
  t.equal(await client.exists(key), 1)
})

t.test('Redis store: an unreadable entry is an error (the state machine then falls back), never a guess', async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisIdempotencyStore(client, prefix)
  await client.set(`${prefix}idem:bad`, '{"state":"done","fingerprint":"fp"}')
  await t.rejects(store.claim('bad', mine, 15_000), /unreadable idempotency entry/)
  await client.set(`${prefix}idem:garbage`, 'not json')
  await t.rejects(store.claim('garbage', mine, 15_000), SyntaxError)
})

t.test('Redis store: every operation fails while Redis is down (nothing is queued)', async (t) => {
  const server = await startRedis(t)
  const { client, prefix } = await redisClient(t, server.url)
  const store = new RedisIdempotencyStore(client, prefix)
  await server.kill()
  await new Promise<void>((resolve) => { if (client.status !== 'ready') resolve(); else client.once('close', () => resolve()) })
  await t.rejects(store.claim('k', mine, 15_000))
  await t.rejects(store.complete('k', mine, done, 60_000))
  await t.rejects(store.release('k', mine))
})
