import t, { type Test } from 'tap'
import { pino } from 'pino'
import { errors, type GatewayError } from '../../src/errors.js'
import { SharedFlight, type LandingListener, type SharedAnswer, type SharedFlightOptions } from '../../src/core/shared-flight.js'
import type { Landing } from '../../src/core/shared-store.js'
import { TaskCache } from '../../src/core/task-cache.js'
import type { Scope } from '../../src/core/scope.js'
import type { UpstreamTask } from '../../src/upstream/types.js'
import { StoredTask } from '../../src/core/stored-task.js'
import { connectSharedTier, type SharedTier } from '../../src/plugins/redis.js'
import { RedisTaskStore } from '../../src/shared/redis-store.js'
import { ManualClock, waitFor } from '../helpers/gateway.js'
import { startRedis, type RedisServer } from '../helpers/redis.js'
import { eventually } from '../helpers/replicas.js'

/*
 * The flight between L1 and the batcher, against a real redis-server. Each
 * "replica" is a flight with its own L1, its own Redis connections and its
 * own upstream; the upstreams record every id they are asked for.
 */

const SCOPE: Scope = { partition: 'shared', credential: undefined }
const TENANT: Scope = { partition: 'cred:tenant-digest', credential: 'sk-tenant' }

/** An upstream that answers when told to, and records what it was asked. */
class Upstream {
  readonly calls: string[] = []
  readonly tasks = new Map<string, UpstreamTask>()
  readonly #pending = new Map<string, Array<{ resolve: (task: StoredTask | null) => void, reject: (err: Error) => void }>>()
  /** When set, calls wait for `answer()`/`fail()` instead of answering at once. */
  held = false
  failure: Error | undefined

  async load (id: string): Promise<StoredTask | null> {
    this.calls.push(id)
    if (this.failure !== undefined) throw this.failure
    if (!this.held) return this.#answerOf(id)
    return await new Promise((resolve, reject) => {
      const list = this.#pending.get(id) ?? []
      list.push({ resolve, reject })
      this.#pending.set(id, list)
    })
  }

  answer (id: string): void {
    for (const p of this.#pending.get(id) ?? []) p.resolve(this.#answerOf(id))
    this.#pending.delete(id)
  }

  /** Serialized once, as the batcher's fetch does. */
  #answerOf (id: string): StoredTask | null {
    const task = this.tasks.get(id)
    return task === undefined ? null : StoredTask.from(task)
  }

  fail (id: string, err: Error): void {
    for (const p of this.#pending.get(id) ?? []) p.reject(err)
    this.#pending.delete(id)
  }
}

interface Replica {
  flight: SharedFlight
  cache: TaskCache
  upstream: Upstream
  tier: SharedTier & { close (): void }
  store: RedisTaskStore
  counts: { hit: number, miss: number, waits: number, takeovers: number, errors: string[] }
}

const silent = pino({ level: 'silent' })

async function replica (t: Test, redis: RedisServer, clock: ManualClock, opts: Partial<SharedFlightOptions> = {}, timeoutMs = 200): Promise<Replica> {
  const tier = connectSharedTier({ url: redis.url, prefix: 'test:', timeoutMs }, silent)
  t.teardown(() => tier.close())
  const cache = new TaskCache({ maxEntries: 1000, ttlMs: 2000, finalTtlMs: 60_000, notFoundTtlMs: 1000, staleMs: 60_000, now: clock.now })
  const upstream = new Upstream()
  const counts = { hit: 0, miss: 0, waits: 0, takeovers: 0, errors: [] as string[] }
  const store = new RedisTaskStore(tier, 'ns1')
  const flight = new SharedFlight({
    store,
    upstream,
    cache,
    now: clock.now,
    leaseMs: 10_000,
    maxWaitMs: 20_000,
    pollMs: 5_000,
    maxQueued: 1000,
    observer: {
      lookups: (result, n) => { counts[result] += n },
      leaseWait: () => { counts.waits++ },
      takeover: () => { counts.takeovers++ },
      error: (op) => { counts.errors.push(op) }
    },
    ...opts
  })
  t.teardown(() => flight.close())
  await waitFor(() => tier.state === 'up', 'the replica to connect to Redis')
  return { flight, cache, upstream, tier, store, counts }
}

/** Two replicas on one private redis-server and one manual clock. */
async function twoReplicas (t: Test, optsA: Partial<SharedFlightOptions> = {}, optsB: Partial<SharedFlightOptions> = optsA): Promise<{ clock: ManualClock, a: Replica, b: Replica }> {
  const redis = await startRedis(t)
  const clock = new ManualClock()
  return { clock, a: await replica(t, redis, clock, optsA), b: await replica(t, redis, clock, optsB) }
}

/** Resolves once `count` replicas listen for announcements (SUBSCRIBE is asynchronous). */
async function subscribed (tier: SharedTier, count: number): Promise<void> {
  await eventually(async () => {
    const [, n] = await tier.client.pubsub('NUMSUB', 'test:tasks:ns1') as [string, number]
    return Number(n) >= count
  }, `${count} subscribers`)
}

/** Lua script calls Redis has run so far (EVAL and EVALSHA). */
async function scriptCalls (tier: SharedTier): Promise<number> {
  const info = await tier.client.info('commandstats')
  let calls = 0
  for (const match of info.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)) calls += Number(match[1])
  return calls
}

function task (id: string, progress = '31%'): UpstreamTask {
  return { id, status: 'IN_PROGRESS', progress }
}

t.test('an L2 miss leases the id and fetches it; another replica then reads it from L2 with its expiry, not a new TTL', async (t) => {
  const { clock, a, b } = await twoReplicas(t)
  a.upstream.tasks.set('1', task('1'))

  const first = await a.flight.load('1', SCOPE)
  t.strictSame(first.entry, { stored: StoredTask.from(task('1')), storedAt: clock.time, freshUntil: clock.time + 2000 })
  t.equal(first.hit, false)
  t.strictSame(a.upstream.calls, ['1'])
  // The holder writes L2 and releases its lease at once, in one round trip.
  await eventually(async () => await a.tier.client.exists(a.store.taskKey('shared', '1')) === 1, 'the entry in L2')
  t.equal(await a.tier.client.get(a.store.leaseKey('shared', '1')), null, 'no lease left behind')
  const pttl = await a.tier.client.pttl(a.store.taskKey('shared', '1'))
  t.ok(pttl > 60_000 && pttl <= 62_000, `L2 keeps it for fresh TTL + stale window (${pttl} ms)`)

  clock.advance(1500)
  const second = await b.flight.load('1', SCOPE)
  t.equal(second.hit, true, 'read from L2')
  t.strictSame(second.entry, first.entry, 'the same entry, stored at the same time')
  t.strictSame(b.upstream.calls, [], 'never asked upstream')
  const copy = b.cache.get('shared', '1')!
  t.equal(copy.freshUntil, first.entry!.freshUntil, 'the L1 copy expires when L2\'s entry does')
  clock.advance(500)
  t.notOk(b.cache.isFresh(copy), 'and is stale 2 s after the original fetch, not after the copy')
  t.strictSame(b.counts, { hit: 1, miss: 0, waits: 0, takeovers: 0, errors: [] })
})

t.test('the misses of one turn cost one acquire; a fresh L2 entry answers, the rest go upstream', async (t) => {
  const { a, b } = await twoReplicas(t)
  for (const id of ['1', '2', '3']) b.upstream.tasks.set(id, task(id))
  a.upstream.tasks.set('1', task('1'))
  await a.flight.load('1', SCOPE)
  await eventually(async () => await a.tier.client.exists(a.store.taskKey('shared', '1')) === 1, 'the entry in L2')

  const before = await scriptCalls(b.tier)
  const answers = await Promise.all(['1', '2', '3', '2'].map((id) => b.flight.load(id, SCOPE)))
  t.strictSame(answers.map((x) => x.hit), [true, false, false, false])
  t.strictSame(b.upstream.calls, ['2', '3'], 'each missing id once; the repeat joined')
  t.equal(answers[1], answers[3], 'the repeated id shares one lookup')
  t.strictSame({ hit: b.counts.hit, miss: b.counts.miss }, { hit: 1, miss: 2 })
  await eventually(async () => await b.tier.client.exists(b.store.taskKey('shared', '3')) === 1, 'B\'s settle')
  t.equal(await scriptCalls(b.tier) - before, 2, 'one acquire for the three ids, one settle for the two fetched')
})

t.test('an id leased by another replica waits for its announcement and never goes upstream', async (t) => {
  const { a, b } = await twoReplicas(t)
  await subscribed(a.tier, 2)
  a.upstream.tasks.set('9', task('9', '77%'))
  a.upstream.held = true

  const holder = a.flight.load('9', SCOPE)
  await waitFor(() => a.upstream.calls.length === 1, 'A to ask upstream')
  const waiter = b.flight.load('9', SCOPE)
  await waitFor(() => b.flight.stats.waiting === 1, 'B to wait on A\'s lease')
  a.upstream.answer('9')
  const [ours, theirs] = await Promise.all([holder, waiter])
  t.strictSame(theirs.entry, ours.entry, 'B got A\'s answer')
  t.equal(theirs.hit, false, 'a joined fetch, not a cache hit')
  t.strictSame(a.upstream.calls, ['9'])
  t.strictSame(b.upstream.calls, [], 'B never asked upstream')
  t.equal(b.counts.waits, 1)
  t.strictSame(b.cache.get('shared', '9')?.stored?.task, task('9', '77%'), 'and keeps it in its L1')
})

t.test('a holder that dies mid-call: its lease runs out and a waiting replica takes over', async (t) => {
  const { a, b } = await twoReplicas(t, { leaseMs: 300 }, { leaseMs: 300, maxWaitMs: 10_000 })
  a.upstream.held = true
  b.upstream.tasks.set('5', task('5'))

  void a.flight.load('5', SCOPE)
  await waitFor(() => a.upstream.calls.length === 1, 'A to ask upstream')
  // A crashes: its connection goes, nothing is released or announced.
  a.tier.close()
  const answer = await b.flight.load('5', SCOPE)
  t.strictSame(answer.entry?.stored?.task, task('5'))
  t.strictSame(b.upstream.calls, ['5'], 'B fetched it once the lease ran out')
  t.strictSame({ waits: b.counts.waits, takeovers: b.counts.takeovers }, { waits: 1, takeovers: 1 })
})

t.test('the holder\'s upstream failure is the waiters\' answer, with L2\'s stale entry', async (t) => {
  const { clock, a, b } = await twoReplicas(t)
  await subscribed(a.tier, 2)
  a.upstream.tasks.set('4', task('4', '10%'))
  await a.flight.load('4', SCOPE)
  clock.advance(5_000)

  a.upstream.held = true
  const holder = a.flight.load('4', SCOPE)
  await waitFor(() => a.upstream.calls.length === 2, 'A to ask upstream again')
  const waiter = b.flight.load('4', SCOPE)
  await waitFor(() => b.flight.stats.waiting === 1, 'B to wait')
  const failure: GatewayError = new errors.UpstreamError('HTTP 500: boom')
  failure.upstreamStatus = 500
  a.upstream.fail('4', failure)
  const [ours, theirs] = await Promise.all([holder, waiter])
  t.equal(ours.error, failure)
  t.ok(theirs.error instanceof errors.UpstreamError, 'the same class of error')
  t.equal(theirs.error!.message, 'Upstream call failed: HTTP 500: boom')
  t.equal(theirs.error!.statusCode, 502)
  t.equal(theirs.error!.upstreamStatus, 500)
  t.strictSame(theirs.stale?.stored?.task, task('4', '10%'), 'the stale entry L2 held, for stale-if-error')
  t.strictSame(b.upstream.calls, [])
})

t.test('a holder that cannot ask upstream (breaker open) hands the lease back and the waiter fetches', async (t) => {
  const { a, b } = await twoReplicas(t)
  await subscribed(a.tier, 2)
  a.upstream.held = true
  b.upstream.tasks.set('6', task('6'))
  const holder = a.flight.load('6', SCOPE)
  await waitFor(() => a.upstream.calls.length === 1, 'A to ask upstream')
  const waiter = b.flight.load('6', SCOPE)
  await waitFor(() => b.flight.stats.waiting === 1, 'B to wait')
  a.upstream.fail('6', new errors.UpstreamCircuitOpen('5 consecutive upstream failures'))
  t.ok((await holder).error instanceof errors.UpstreamCircuitOpen)
  const answer = await waiter
  t.strictSame(answer.entry?.stored?.task, task('6'), 'B asked upstream itself')
  t.strictSame(b.upstream.calls, ['6'])
})

t.test('tenants never share an entry or a lease', async (t) => {
  const { a, b } = await twoReplicas(t)
  a.upstream.tasks.set('8', task('8'))
  await a.flight.load('8', SCOPE)
  const other = await b.flight.load('8', TENANT)
  t.equal(other.hit, false)
  t.equal(other.entry?.stored, null, 'the tenant asked upstream with its own credential')
  t.strictSame(b.upstream.calls, ['8'])
})

t.test('with Redis down the flight goes straight to upstream; a hung Redis costs at most its timeout', async (t) => {
  const redis = await startRedis(t)
  const clock = new ManualClock()
  const a = await replica(t, redis, clock, {}, 100)
  a.upstream.tasks.set('1', task('1'))
  a.upstream.tasks.set('2', task('2'))

  redis.pause()
  t.teardown(() => redis.resume())
  const slow = await a.flight.load('1', SCOPE)
  t.strictSame(slow.entry?.stored?.task, task('1'), 'answered from upstream once the acquire timed out')
  t.strictSame(a.counts.errors, ['acquire'])

  await redis.kill()
  await waitFor(() => a.tier.state === 'down', 'the connection to drop')
  const down = await a.flight.load('2', SCOPE)
  t.strictSame(down.entry?.stored?.task, task('2'))
  t.strictSame(a.upstream.calls, ['1', '2'])
  t.strictSame(a.counts.errors.filter((op) => op === 'acquire'), ['acquire'], 'no call is tried while Redis is known to be down')
})

t.test('a lookup waits on another replica\'s lease no longer than maxWaitMs', async (t) => {
  const { a, b } = await twoReplicas(t, {}, { maxWaitMs: 150, pollMs: 50 })
  a.upstream.held = true
  void a.flight.load('3', SCOPE)
  await waitFor(() => a.upstream.calls.length === 1, 'A to ask upstream')
  const answer = await b.flight.load('3', SCOPE)
  t.ok(answer.error instanceof errors.UpstreamTimeout, 'UPSTREAM_TIMEOUT')
  t.equal(answer.error?.message, 'Upstream did not answer within 150 ms')
  t.strictSame(b.upstream.calls, [], 'still never asked upstream while the lease lived')
  a.upstream.answer('3')
})

t.test('answers for watched ids reach the listener, fresh in L1, whichever replica fetched them', async (t) => {
  const { clock, a, b } = await twoReplicas(t)
  await subscribed(a.tier, 2)
  const heard: Array<[string, string[]]> = []
  const listener: LandingListener = {
    watching: (partition, id) => partition === 'shared' && id === '7',
    landed: (partition, ids) => { heard.push([partition, [...ids]]) }
  }
  b.flight.setListener(listener)
  a.upstream.tasks.set('7', task('7', '50%'))
  a.upstream.tasks.set('70', task('70'))
  await Promise.all([a.flight.load('7', SCOPE), a.flight.load('70', SCOPE)])
  await waitFor(() => heard.length === 1, 'B to hear of 7')
  t.strictSame(heard, [['shared', ['7']]], 'only the watched id')
  t.strictSame(b.cache.get('shared', '7')?.stored?.task, task('7', '50%'), 'in B\'s L1 before the listener reads it')
  t.equal(b.cache.get('shared', '70'), undefined, 'unwatched answers do not fill L1')

  b.upstream.tasks.set('7', task('7', '60%'))
  clock.advance(2_000)
  await b.flight.load('7', SCOPE)
  await waitFor(() => heard.length === 2, 'B\'s own fetch to be told too')
  t.strictSame(heard[1], ['shared', ['7']])
})

t.test('a lease this replica left behind (its settle failed) is claimed again, never waited on', async (t) => {
  const redis = await startRedis(t)
  const clock = new ManualClock()
  const a = await replica(t, redis, clock)
  await a.tier.client.set(a.store.leaseKey('shared', '2'), 'someone-else', 'PX', 60_000)
  const held = await a.store.acquire('shared', ['2'], clock.now(), 10_000)
  t.equal(held[0]!.kind, 'held', 'another replica\'s lease is waited on')
  await a.tier.client.del(a.store.leaseKey('shared', '2'))
  const first = await a.store.acquire('shared', ['2'], clock.now(), 10_000)
  const again = await a.store.acquire('shared', ['2'], clock.now(), 10_000)
  t.strictSame([first[0]!.kind, again[0]!.kind], ['claimed', 'claimed'])
})

t.test('lookups of a closing flight that wait on another replica end with 503', async (t) => {
  const { a, b } = await twoReplicas(t)
  a.upstream.held = true
  void a.flight.load('1', SCOPE)
  await waitFor(() => a.upstream.calls.length === 1, 'A to ask upstream')
  const waiter: Promise<SharedAnswer> = b.flight.load('1', SCOPE)
  await waitFor(() => b.flight.stats.waiting === 1, 'B to wait')
  b.flight.close()
  const answer = await waiter
  t.ok(answer.error instanceof errors.Overloaded)
  a.upstream.answer('1')
})

t.test('forget drops an id\'s L2 entry: a submit just created the task that L2 remembers as unknown', async (t) => {
  const { a, b } = await twoReplicas(t)
  t.equal((await a.flight.load('12', SCOPE)).entry?.stored, null, 'unknown for now')
  await eventually(async () => await a.tier.client.exists(a.store.taskKey('shared', '12')) === 1, 'the unknown in L2')
  a.flight.forget('shared', '12')
  await eventually(async () => await a.tier.client.exists(a.store.taskKey('shared', '12')) === 0, 'the entry to go')
  b.upstream.tasks.set('12', task('12', '0%'))
  t.strictSame((await b.flight.load('12', SCOPE)).entry?.stored?.task, task('12', '0%'), 'the next lookup asks upstream')
})

t.test('more lookups on their way than BATCH_MAX_QUEUED get 503, as from the batcher', async (t) => {
  const redis = await startRedis(t)
  const clock = new ManualClock()
  const a = await replica(t, redis, clock, { maxQueued: 2 })
  a.upstream.held = true
  const first = a.flight.load('1', SCOPE)
  const second = a.flight.load('2', SCOPE)
  const third = await a.flight.load('3', SCOPE)
  t.ok(third.error instanceof errors.Overloaded, 'GW_ERR_OVERLOADED')
  t.equal(third.error?.message, 'The gateway is overloaded: 2 task lookups are already waiting on upstream')
  t.equal(a.flight.load('1', SCOPE), first, 'a lookup joining one on its way is not refused')
  await waitFor(() => a.upstream.calls.length === 2, 'both to reach upstream')
  a.upstream.answer('1')
  a.upstream.answer('2')
  await Promise.all([first, second])
})

t.test('an announcement that comes before a lookup has asked answers it as a hit, if fresh; a failure or a stale answer does not', async (t) => {
  const redis = await startRedis(t)
  const clock = new ManualClock()
  const tier = connectSharedTier({ url: redis.url, prefix: 'test:', timeoutMs: 200 }, silent)
  t.teardown(() => tier.close())
  await waitFor(() => tier.state === 'up', 'Redis')
  const store = new RedisTaskStore(tier, 'ns1')
  let announce!: (partition: string, landings: readonly Landing[]) => void
  const upstream = new Upstream()
  const cache = new TaskCache({ maxEntries: 10, ttlMs: 2000, finalTtlMs: 60_000, notFoundTtlMs: 1000, staleMs: 60_000, now: clock.now })
  const counts = { hit: 0, miss: 0 }
  const flight = new SharedFlight({
    store: { get available () { return store.available }, acquire: store.acquire.bind(store), settle: store.settle.bind(store), forget: store.forget.bind(store), listen: (fn) => { announce = fn } },
    upstream,
    cache,
    now: clock.now,
    leaseMs: 10_000,
    maxWaitMs: 20_000,
    pollMs: 5_000,
    maxQueued: 100,
    observer: { lookups: (result, n) => { counts[result] += n }, leaseWait: () => {}, takeover: () => {}, error: () => {} }
  })
  t.teardown(() => flight.close())
  for (const id of ['1', '2', '3']) upstream.tasks.set(id, task(id, 'from upstream'))

  const fresh = { stored: StoredTask.from(task('1', 'announced')), storedAt: clock.time, freshUntil: clock.time + 2_000 }
  const hit = flight.load('1', SCOPE)
  announce('shared', [{ id: '1', entry: fresh, keepMs: 0 }])
  t.strictSame(await hit, { entry: fresh, hit: true })
  t.strictSame(counts, { hit: 1, miss: 0 }, 'counted as the L2 hit it stands for')

  const failed = flight.load('2', SCOPE)
  announce('shared', [{ id: '2', error: new errors.UpstreamError('HTTP 500') }])
  const stale = flight.load('3', SCOPE)
  announce('shared', [{ id: '3', entry: { ...fresh, stored: StoredTask.from(task('3', 'old')), freshUntil: clock.time }, keepMs: 0 }])
  t.strictSame([(await failed).entry?.stored?.task, (await stale).entry?.stored?.task], [task('2', 'from upstream'), task('3', 'from upstream')], 'both asked for themselves')
  t.strictSame(upstream.calls, ['2', '3'])
  t.strictSame(counts, { hit: 1, miss: 2 }, 'the two that asked L2 found nothing fresh there')
})
