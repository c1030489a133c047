import t, { type Test } from 'tap'
import { pino } from 'pino'
import { errors, type GatewayError } from '../../src/errors.js'
import type { Landing } from '../../src/core/shared-store.js'
import { StoredTask } from '../../src/core/stored-task.js'
import type { UpstreamTask } from '../../src/upstream/types.js'
import { connectSharedTier } from '../../src/plugins/redis.js'
import { decodeEntry, encodeEntry, errorFromWire, parseNotice, RedisTaskStore } from '../../src/shared/redis-store.js'
import { waitFor } from '../helpers/gateway.js'
import { eventually } from '../helpers/replicas.js'
import { startRedis } from '../helpers/redis.js'

const NOW = 1_700_000_000_000

const stored = (task: Partial<UpstreamTask>): StoredTask => StoredTask.from(task as UpstreamTask)

async function store (t: Test, url: string): Promise<{ store: RedisTaskStore, tier: ReturnType<typeof connectSharedTier> }> {
  const tier = connectSharedTier({ url, prefix: 'p1:', timeoutMs: 500 }, pino({ level: 'silent' }))
  t.teardown(() => tier.close())
  await waitFor(() => tier.state === 'up', 'Redis')
  return { store: new RedisTaskStore(tier, 'ns'), tier }
}

t.test('keys carry the prefix, a namespace and the partition; values are task JSON with their freshness', async (t) => {
  const redis = await startRedis(t)
  const { store: s, tier } = await store(t, redis.url)
  t.equal(s.taskKey('cred:abc', '17'), 'p1:task:ns:cred:abc:17')
  t.equal(s.leaseKey('shared', '17'), 'p1:lease:ns:shared:17')

  const [claim] = await s.acquire('shared', ['17'], NOW, 5_000)
  t.strictSame(claim, { kind: 'claimed', stale: undefined })
  const token = await tier.client.get('p1:lease:ns:shared:17')
  t.match(token, /^[\w-]{16}$/, 'the lease holds a random token')
  const lease = await tier.client.pttl('p1:lease:ns:shared:17')
  t.ok(lease > 4_000 && lease <= 5_000, `the lease lasts leaseMs (${lease})`)

  const entry = { stored: stored({ id: '17', status: 'IN_PROGRESS' }), storedAt: NOW, freshUntil: NOW + 2_000 }
  await s.settle('shared', [{ id: '17', entry, keepMs: 62_000 }])
  t.equal(await tier.client.get('p1:task:ns:shared:17'), `{"freshUntil":${NOW + 2000},"storedAt":${NOW},"task":{"id":"17","status":"IN_PROGRESS"}}`)
  const keep = await tier.client.pttl('p1:task:ns:shared:17')
  t.ok(keep > 61_000 && keep <= 62_000, `kept for keepMs (${keep})`)
  t.equal(await tier.client.exists('p1:lease:ns:shared:17'), 0, 'released')

  t.strictSame(await s.acquire('shared', ['17'], NOW + 1_999, 5_000), [{ kind: 'fresh', entry }], 'fresh until freshUntil, by the caller\'s clock')
  t.strictSame(await s.acquire('shared', ['17'], NOW + 2_000, 5_000), [{ kind: 'claimed', stale: entry }], 'then leased again, the old entry kept for stale-if-error')
})

t.test('a settle never overwrites a newer entry, and releases only this replica\'s leases', async (t) => {
  const redis = await startRedis(t)
  const { store: a, tier } = await store(t, redis.url)
  const { store: b } = await store(t, redis.url)
  const newer = { stored: stored({ id: '1', progress: '60%' }), storedAt: NOW + 100, freshUntil: NOW + 2_100 }
  const older = { stored: stored({ id: '1', progress: '30%' }), storedAt: NOW, freshUntil: NOW + 2_000 }
  await a.settle('shared', [{ id: '1', entry: newer, keepMs: 10_000 }])
  await b.settle('shared', [{ id: '1', entry: older, keepMs: 10_000 }])
  t.strictSame(decodeEntry('1', (await tier.client.get(a.taskKey('shared', '1')))!), newer)

  t.equal((await b.acquire('shared', ['2'], NOW, 5_000))[0]!.kind, 'claimed')
  await a.settle('shared', [{ id: '2' }])
  t.equal(await tier.client.exists(a.leaseKey('shared', '2')), 1, 'A cannot release B\'s lease')
  const held = await a.acquire('shared', ['2'], NOW, 5_000)
  t.equal(held[0]!.kind, 'held')
  await b.settle('shared', [{ id: '2' }])
  t.equal(await tier.client.exists(a.leaseKey('shared', '2')), 0, 'B can')
})

t.test('a lease without an expiry is given one, so nobody waits on it for ever', async (t) => {
  const redis = await startRedis(t)
  const { store: s, tier } = await store(t, redis.url)
  await tier.client.set(s.leaseKey('shared', '3'), 'someone')
  const [held] = await s.acquire('shared', ['3'], NOW, 5_000)
  t.strictSame(held, { kind: 'held', stale: undefined, leaseLeftMs: 5_000 })
  t.ok(await tier.client.pttl(s.leaseKey('shared', '3')) > 0)
})

t.test('announcements carry entries, errors and handed-back leases to the other replicas, not to their sender', async (t) => {
  const redis = await startRedis(t)
  const { store: a, tier } = await store(t, redis.url)
  const { store: b } = await store(t, redis.url)
  const heardByA: unknown[] = []
  const heardByB: Array<{ partition: string, landings: readonly Landing[] }> = []
  a.listen((partition, landings) => heardByA.push({ partition, landings }))
  b.listen((partition, landings) => heardByB.push({ partition, landings }))
  await eventually(async () => (await tier.client.pubsub('NUMSUB', 'p1:tasks:ns') as [string, number])[1] === 2, 'both to subscribe')

  const failure: GatewayError = new errors.UpstreamTimeout(10_000)
  failure.retryAfter = 3
  const entry = { stored: stored({ id: '5' }), storedAt: NOW, freshUntil: NOW + 1_000 }
  await a.settle('cred:x', [{ id: '5', entry, keepMs: 1_000 }, { id: '6', error: failure }, { id: '7' }])
  await waitFor(() => heardByB.length === 1, 'B to hear')
  const { partition, landings } = heardByB[0]!
  t.equal(partition, 'cred:x')
  t.strictSame(landings[0], { id: '5', entry, keepMs: 0 })
  t.ok(landings[1]!.error instanceof errors.UpstreamTimeout)
  t.strictSame([landings[1]!.error!.message, landings[1]!.error!.statusCode, landings[1]!.error!.retryAfter], [failure.message, 504, 3])
  t.strictSame(landings[2], { id: '7' })
  // One channel delivers in order: once A hears B, it would have heard its own announcement first.
  await b.settle('cred:x', [{ id: '8' }])
  await waitFor(() => heardByA.length === 1, 'A to hear B')
  t.strictSame(heardByA, [{ partition: 'cred:x', landings: [{ id: '8' }] }], 'a replica does not hear itself')
})

t.test('an entry carries the task\'s text as it is kept: read back, it is a new entry with the same text and expiry', async (t) => {
  const task = { id: '1', status: 'SUCCESS', submitTime: NOW, startTime: '', finishTime: NOW + 9 } as unknown as UpstreamTask
  const entry = { stored: StoredTask.from(task), storedAt: NOW, freshUntil: NOW + 5 }
  const value = encodeEntry(entry)
  t.equal(value, `{"freshUntil":${NOW + 5},"storedAt":${NOW},"task":${entry.stored.raw}}`, 'the raw text, not serialized again')
  const back = decodeEntry('1', value)!
  t.not(back, entry, 'a new entry')
  t.not(back.stored, entry.stored)
  t.strictSame([back.stored!.raw, back.stored!.rest, back.stored!.final, back.storedAt, back.freshUntil],
    [entry.stored.raw, entry.stored.rest, true, NOW, NOW + 5])
  t.equal(back.stored!.rest, `{"id":"1","status":"SUCCESS","submitTime":${NOW},"startTime":null,"finishTime":${NOW + 9}}`, 'REST\'s "" times as null')
})

t.test('what comes back from Redis is checked: anything malformed counts as absent', async (t) => {
  const entry = { stored: stored({ id: '1' }), storedAt: NOW, freshUntil: NOW + 5 }
  t.strictSame(decodeEntry('1', encodeEntry(entry)), entry)
  t.strictSame(decodeEntry('1', encodeEntry({ ...entry, stored: null })), { ...entry, stored: null })
  t.equal(decodeEntry('2', encodeEntry(entry)), undefined, 'a task under another id\'s key')
  t.equal(decodeEntry('1', 'not json'), undefined)
  t.equal(decodeEntry('1', '{"freshUntil":"soon","storedAt":1,"task":null}'), undefined)
  t.equal(decodeEntry('1', '{"freshUntil":1,"storedAt":1,"task":[]}'), undefined)
  t.equal(decodeEntry('1', '{"freshUntil":1,"storedAt":1,"task":{"id":"1"}'), undefined, 'cut short')
  t.equal(decodeEntry('1', '{"freshUntil":1,"storedAt":1,"task":{"id":"1"}x}'), undefined, 'trailing bytes')
  t.equal(parseNotice('1\n'), undefined, 'a partition that is not a string')
  t.equal(parseNotice('"shared"\nentry\t"1"\t{"freshUntil":1}'), undefined)
  t.equal(parseNotice('"shared"\nerror\t"1"\t{"message":"no code"}'), undefined)
  t.equal(parseNotice('"shared"\nreleased\t1'), undefined, 'an id that is not a string')
  t.equal(parseNotice('"shared"\nsomething\t"1"'), undefined, 'an unknown kind')
  t.equal(parseNotice('"shared"\nreleased\t"1"\textra'), undefined)
  t.strictSame(parseNotice('"shared"'), { partition: 'shared', landings: [] })
  t.strictSame(parseNotice(`"shared"\nentry\t"1"\t${encodeEntry(entry)}\nreleased\t"2"`),
    { partition: 'shared', landings: [{ id: '1', entry, keepMs: 0 }, { id: '2' }] })
})

t.test('an error from another replica keeps its class, code and status; an unknown code becomes UPSTREAM_ERROR', async (t) => {
  const circuit = errorFromWire({ code: 'UPSTREAM_CIRCUIT_OPEN', message: 'paused', statusCode: 503 })
  t.ok(circuit instanceof errors.UpstreamCircuitOpen)
  t.strictSame([circuit.code, circuit.statusCode, circuit.message], ['UPSTREAM_CIRCUIT_OPEN', 503, 'paused'])
  const unknown = errorFromWire({ code: 'SOMETHING_NEWER', message: 'from a newer replica', statusCode: 500 })
  t.ok(unknown instanceof errors.UpstreamError)
  t.equal(unknown.statusCode, 502)
})
