import t from 'tap'
import type { Scope } from '../../src/core/scope.js'
import { buildApp } from '../../src/app.js'
import { errors, type GatewayError } from '../../src/errors.js'
import type { Lookup } from '../../src/core/task-loader.js'
import type { UpstreamTask } from '../../src/upstream/types.js'
import { taskVersion } from '../../src/core/task-identity.js'
import { NOT_FOUND_GRACE_MS, Watcher, type WatchEvent, type WatcherOptions, type WatchTimers } from '../../src/core/watcher.js'
import { ManualClock } from '../helpers/gateway.js'
import { StoredTask } from '../../src/core/stored-task.js'

const storedOf = (task: UpstreamTask | undefined): StoredTask | null => task === undefined ? null : StoredTask.from(task)
import { startSimulator } from '../helpers/simulator.js'

const SCOPE: Scope = { partition: 'shared', credential: undefined }

/** Timers the test fires by hand. */
class FakeTimers implements WatchTimers {
  readonly pending = new Map<number, () => void>()
  #next = 0
  setTimeout (fn: () => void): unknown {
    const id = ++this.#next
    this.pending.set(id, fn)
    return id
  }

  clearTimeout (handle: unknown): void { this.pending.delete(handle as number) }
}

/** A stored row whose text does not parse: reading its task throws, as a bug in the store would make it. */
const unreadable = (): StoredTask => new (StoredTask as unknown as new (raw: string, rest: string, final: boolean) => StoredTask)('{"id":"b",', '{"id":"b",', false)

/**
 * A loader over a map of tasks: `null` for unknown ids, an error while `failing` is set, an unreadable
 * row for the ids in `broken`; `hold()` keeps the next read in flight.
 */
class FakeLoader {
  readonly tasks = new Map<string, UpstreamTask>()
  readonly broken = new Set<string>()
  readonly calls: string[][] = []
  failing: Error | undefined
  #held: Promise<void> | undefined
  hold (): () => void {
    let release!: () => void
    this.#held = new Promise((resolve) => { release = resolve })
    return release
  }

  async loadMany (ids: readonly string[]): Promise<Lookup[]> {
    this.calls.push([...ids])
    const held = this.#held
    this.#held = undefined
    if (held !== undefined) await held
    return ids.map((id): Lookup => this.failing !== undefined
      ? { error: this.failing as never }
      : { stored: this.broken.has(id) ? unreadable() : storedOf(this.tasks.get(id)), cache: 'miss', ageMs: 0, entry: undefined })
  }
}

function make (opts: Partial<WatcherOptions> = {}): { watcher: Watcher, loader: FakeLoader, timers: FakeTimers } {
  const loader = new FakeLoader()
  const timers = new FakeTimers()
  const watcher = new Watcher({ loader, intervalMs: 1000, maxIdsPerConnection: 10, maxIds: 100, maxConnectionsPerClient: 5, timers, ...opts })
  return { watcher, loader, timers }
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function collect (): { events: WatchEvent[], onEvent: (e: WatchEvent) => void, summary: () => string[] } {
  const events: WatchEvent[] = []
  return {
    events,
    onEvent: (e) => { events.push(e) },
    summary: () => events.map((e) => e.type === 'task' ? `${e.id}:${e.task.status}:${e.task.progress}` : e.type === 'error' ? `${e.id}:error:${e.error.code}${e.final ? '' : ':retrying'}` : e.type)
  }
}

t.test('the version ignores rand and key order, and sees every real change', async (t) => {
  const base: UpstreamTask = { id: '1', status: 'IN_PROGRESS', progress: '31%', imageUrl: 'https://x/mj/image/1?rand=1&w=2' }
  t.equal(taskVersion(base), taskVersion({ progress: '31%', imageUrl: 'https://x/mj/image/1?w=2&rand=99', id: '1', status: 'IN_PROGRESS' }))
  t.equal(taskVersion({ ...base, imageUrl: 'https://x/mj/image/1?rand=5' }), taskVersion({ ...base, imageUrl: 'https://x/mj/image/1' }))
  t.not(taskVersion(base), taskVersion({ ...base, progress: '46%' }))
  t.not(taskVersion(base), taskVersion({ ...base, imageUrl: 'https://x/mj/image/2?rand=1&w=2' }))
  t.not(taskVersion(base), taskVersion({ ...base, buttons: [{ customId: 'MJ::JOB::upsample::1::u' }] }))
  t.match(taskVersion(base), /^[A-Za-z0-9_-]{10}$/)
})

t.test('current state at once, then only changes, then done when final', async (t) => {
  const { watcher, loader } = make()
  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '15%', imageUrl: 'https://x/a?rand=1' })
  loader.tasks.set('b', { id: 'b', status: 'SUCCESS', progress: '100%' })
  const c = collect()
  const handle = watcher.watch({ ids: ['a', 'b', 'a'], scope: SCOPE, client: 'c1', onEvent: c.onEvent })
  t.same(handle.ids, ['a', 'b'], 'repeats watched once')
  await settle()
  t.same(c.summary(), ['a:IN_PROGRESS:15%', 'b:SUCCESS:100%'])
  t.equal(watcher.stats.ids, 1, 'b is final: delivered, then out of the watch set')

  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '15%', imageUrl: 'https://x/a?rand=2' })
  await watcher.tick()
  t.equal(c.events.length, 2, 'a new rand alone is not a change')
  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '46%', imageUrl: 'https://x/a?rand=3' })
  await watcher.tick()
  await watcher.tick()
  loader.tasks.set('a', { id: 'a', status: 'SUCCESS', progress: '100%', imageUrl: 'https://x/a' })
  await watcher.tick()
  t.same(c.summary(), ['a:IN_PROGRESS:15%', 'b:SUCCESS:100%', 'a:IN_PROGRESS:46%', 'a:SUCCESS:100%', 'done'])
  t.ok(handle.closed, 'closed after done')
  t.same(watcher.stats, { ...watcher.stats, ids: 0, partitions: 0, watches: 0, clients: 0, timerArmed: false })
  t.same(loader.calls, [['a', 'b'], ['a'], ['a'], ['a'], ['a']], 'one loader call per tick for every watched id')
})

t.test('watchers of the same ids share one poll', async (t) => {
  const { watcher, loader } = make()
  for (const id of ['a', 'b', 'c']) loader.tasks.set(id, { id, status: 'SUBMITTED', progress: '0%' })
  const first = collect()
  const second = collect()
  watcher.watch({ ids: ['a', 'b'], scope: SCOPE, client: 'c1', onEvent: first.onEvent })
  watcher.watch({ ids: ['b', 'c'], scope: SCOPE, client: 'c2', onEvent: second.onEvent })
  await settle()
  t.same(loader.calls, [['a', 'b'], ['c']], 'a joining watcher loads only the ids nobody had')
  t.same(second.summary(), ['b:SUBMITTED:0%', 'c:SUBMITTED:0%'], 'and still gets the current state of b at once')
  await watcher.tick()
  t.same(loader.calls.at(-1), ['a', 'b', 'c'])
  loader.tasks.set('b', { id: 'b', status: 'IN_PROGRESS', progress: '15%' })
  await watcher.tick()
  t.same(first.summary().at(-1), 'b:IN_PROGRESS:15%')
  t.same(second.summary().at(-1), 'b:IN_PROGRESS:15%')
})

t.test('an unknown id gets a final error and leaves; the others go on', async (t) => {
  // 2000 ms of grace over 1000 ms ticks: the read on joining, then three ticks.
  const { watcher, loader } = make({ notFoundGraceMs: 2000 })
  loader.tasks.set('a', { id: 'a', status: 'SUBMITTED', progress: '0%' })
  const c = collect()
  watcher.watch({ ids: ['a', 'nope'], scope: SCOPE, client: 'c1', onEvent: c.onEvent })
  await settle()
  await watcher.tick()
  await watcher.tick()
  t.same(c.summary(), ['a:SUBMITTED:0%'], 'nothing for the id while it may just not be listed yet')
  await watcher.tick()
  t.same(c.summary(), ['a:SUBMITTED:0%', 'nope:error:GW_ERR_TASK_NOT_FOUND'])
  t.equal(watcher.stats.ids, 1)
  loader.tasks.set('a', { id: 'a', status: 'CANCEL', progress: '' })
  await watcher.tick()
  t.same(c.summary().slice(-2), ['a:CANCEL:', 'done'])
})

t.test('an upstream outage is reported once per watch and the id stays watched', async (t) => {
  const { watcher, loader } = make()
  loader.tasks.set('a', { id: 'a', status: 'SUBMITTED', progress: '0%' })
  const c = collect()
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c1', onEvent: c.onEvent })
  await settle()
  loader.failing = new errors.UpstreamUnavailable('down')
  await watcher.tick()
  await watcher.tick()
  t.same(c.summary(), ['a:SUBMITTED:0%', 'a:error:UPSTREAM_UNAVAILABLE:retrying'])
  const late = collect()
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c2', onEvent: late.onEvent })
  await settle()
  t.same(late.summary(), ['a:SUBMITTED:0%'], 'a late watcher gets the last good state')
  loader.failing = undefined
  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '15%' })
  await watcher.tick()
  t.same(c.summary().at(-1), 'a:IN_PROGRESS:15%', 'resumes when upstream is back')
  t.equal(watcher.stats.ids, 1)
})

t.test('a just-submitted id not listed yet is polled through the grace period and then delivered', async (t) => {
  const { watcher, loader } = make()
  const c = collect()
  const h = watcher.watch({ ids: ['new'], scope: SCOPE, client: 'c1', onEvent: c.onEvent })
  await settle()
  await watcher.tick()
  t.same(c.summary(), [], 'no event, and no final error, for an id upstream has not listed yet')
  t.equal(watcher.stats.ids, 1, 'still watched')
  loader.tasks.set('new', { id: 'new', status: 'NOT_START', progress: '0%' })
  await watcher.tick()
  t.same(c.summary(), ['new:NOT_START:0%'])
  t.notOk(h.closed)
})

t.test('the not-found grace covers NOT_FOUND_GRACE_MS of ticks, counted afresh after each sighting', async (t) => {
  t.equal(NOT_FOUND_GRACE_MS, 10_000)
  const { watcher, loader } = make({ intervalMs: 3000 })
  const c = collect()
  watcher.watch({ ids: ['x'], scope: SCOPE, client: 'c1', onEvent: c.onEvent })
  await settle()
  // The read on joining may land just before a tick, so it does not count as time: 2 + ceil(10 s / 3 s) reads.
  for (let i = 0; i < 4; i++) await watcher.tick()
  t.same(c.summary(), [], 'five reads, the four ticks only nine seconds apart at least: still in grace')
  await watcher.tick()
  t.same(c.summary(), ['x:error:GW_ERR_TASK_NOT_FOUND', 'done'], 'the sixth read, twelve seconds of ticks: unknown')
  t.equal(watcher.stats.ids, 0)
  t.equal(loader.calls.length, 6)

  const later = collect()
  watcher.watch({ ids: ['y'], scope: SCOPE, client: 'c1', onEvent: later.onEvent })
  await settle()
  for (let i = 0; i < 4; i++) await watcher.tick()
  loader.tasks.set('y', { id: 'y', status: 'SUBMITTED', progress: '0%' })
  await watcher.tick()
  loader.tasks.delete('y')
  for (let i = 0; i < 5; i++) await watcher.tick()
  t.same(later.summary(), ['y:SUBMITTED:0%'], 'a sighting restarts the count')
  await watcher.tick()
  t.same(later.summary(), ['y:SUBMITTED:0%', 'y:error:GW_ERR_TASK_NOT_FOUND', 'done'])
})

t.test('an upstream rejection of the credential (4xx) is final for the ids; 429 and 5xx are retried', async (t) => {
  const { watcher, loader } = make()
  const refused: GatewayError = new errors.UpstreamError('HTTP 401: invalid_token')
  refused.upstreamStatus = 401
  loader.failing = refused
  const c = collect()
  watcher.watch({ ids: ['a', 'b'], scope: { partition: 'cred:junk', credential: 'junk' }, client: 'c1', onEvent: c.onEvent })
  await settle()
  t.same(c.summary(), ['a:error:UPSTREAM_ERROR', 'b:error:UPSTREAM_ERROR', 'done'], 'final errors, no retrying')
  t.same(watcher.stats, { ...watcher.stats, ids: 0, partitions: 0, watches: 0, clients: 0, timerArmed: false }, 'nothing left to poll')

  for (const status of [429, 500, 503]) {
    const transient: GatewayError = status === 429 ? new errors.UpstreamRateLimited('slow down') : new errors.UpstreamError(`HTTP ${status}`)
    transient.upstreamStatus = status
    loader.failing = transient
    const w = collect()
    const h = watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c1', onEvent: w.onEvent })
    await settle()
    await watcher.tick()
    t.same(w.summary(), [`a:error:${transient.code}:retrying`], `${status}: once, retrying`)
    t.equal(watcher.stats.ids, 1, `${status}: still watched`)
    h.close()
  }
  for (const status of [400, 403, 404]) {
    const answer: GatewayError = new errors.UpstreamError(`HTTP ${status}`)
    answer.upstreamStatus = status
    loader.failing = answer
    const w = collect()
    watcher.watch({ ids: ['a'], scope: { partition: 'cred:junk', credential: 'junk' }, client: 'c1', onEvent: w.onEvent })
    await settle()
    t.same(w.summary(), ['a:error:UPSTREAM_ERROR', 'done'], `${status}: final`)
  }
  t.equal(watcher.stats.ids, 0)

  // The gateway's own key refused is an operator's outage: its watchers wait, as for any outage.
  loader.failing = refused
  const keyed = collect()
  const h = watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c1', onEvent: keyed.onEvent })
  await settle()
  await watcher.tick()
  t.same(keyed.summary(), ['a:error:UPSTREAM_ERROR:retrying'], 'key mode: a refused gateway key is retried')
  t.equal(watcher.stats.ids, 1)
  h.close()
})

t.test('a task that breaks processing fails that id alone: the ids after it in the same read get their state, and later reads go on', async (t) => {
  const logged: Array<{ level: string, obj: Record<string, unknown>, msg: string }> = []
  const log = Object.fromEntries(['info', 'warn', 'error'].map((level) => [level, (obj: Record<string, unknown>, msg: string) => { logged.push({ level, obj, msg }) }])) as never
  const { watcher, loader } = make({ log })
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  // The stored text of `b` does not parse: reading its task throws.
  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '10%' })
  loader.broken.add('b')
  loader.tasks.set('c', { id: 'c', status: 'IN_PROGRESS', progress: '10%' })
  const c = collect()
  watcher.watch({ ids: ['a', 'b', 'c'], scope: SCOPE, client: 'c1', onEvent: c.onEvent })
  await settle()
  t.strictSame(c.summary(), ['a:IN_PROGRESS:10%', 'b:error:GW_ERR_INTERNAL:retrying', 'c:IN_PROGRESS:10%'], 'c is not stranded behind b')
  t.strictSame(logged.map((l) => [l.level, l.msg, l.obj.id]), [['error', 'watcher: processing a task failed; the id stays watched', 'b']])

  loader.tasks.set('a', { id: 'a', status: 'SUCCESS', progress: '100%' })
  loader.tasks.set('c', { id: 'c', status: 'IN_PROGRESS', progress: '50%' })
  await watcher.tick()
  t.strictSame(c.summary().slice(3), ['a:SUCCESS:100%', 'c:IN_PROGRESS:50%'], 'every id is read again on the next tick; b\'s failure is not repeated')
  t.equal(logged.length, 1, 'logged once per failure, not once per tick')
  t.strictSame(loader.calls.at(-1), ['a', 'b', 'c'], 'no id left marked as loading')

  loader.broken.delete('b')
  loader.tasks.set('b', { id: 'b', status: 'SUCCESS', progress: '100%' })
  loader.tasks.set('c', { id: 'c', status: 'SUCCESS', progress: '100%' })
  await watcher.tick()
  t.strictSame(c.summary().slice(5), ['b:SUCCESS:100%', 'c:SUCCESS:100%', 'done'], 'b recovers once its task can be read')
  t.strictSame(unhandled, [])
})

t.test('a loader that answers the wrong number of lookups fails those ids, never the loop', async (t) => {
  const { watcher, loader } = make()
  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '10%' })
  const short = loader.loadMany.bind(loader)
  loader.loadMany = async (ids) => (await short(ids)).slice(0, 1)
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  const c = collect()
  watcher.watch({ ids: ['a', 'b'], scope: SCOPE, client: 'c1', onEvent: c.onEvent })
  await settle()
  t.strictSame(c.summary(), ['a:IN_PROGRESS:10%', 'b:error:GW_ERR_INTERNAL:retrying'])
  await watcher.tick()
  t.strictSame(loader.calls.at(-1), ['a', 'b'])
  t.strictSame(unhandled, [])
})

t.test('a tenant\'s refused or rate-limited credential is logged at info; upstream failures, the gateway\'s own key included, at warn', async (t) => {
  const logged: string[] = []
  const log = Object.fromEntries(['info', 'warn', 'error'].map((level) => [level, (_obj: unknown, msg: string) => { logged.push(`${level}: ${msg}`) }])) as never
  const { watcher, loader } = make({ log })
  const tenant = { partition: 'cred:t', credential: 't' }
  const cases: Array<[Error, Scope, string]> = [
    [Object.assign(new errors.UpstreamUnauthorized('HTTP 401'), { upstreamStatus: 401 }), tenant, 'info: watcher: upstream refused the credential (4xx); the ids are dropped'],
    [Object.assign(new errors.UpstreamCredentialRateLimited('HTTP 429'), { upstreamStatus: 429 }), tenant, 'info: watcher: upstream rate limits the credential; the ids stay watched'],
    [Object.assign(new errors.UpstreamKeyRejected('HTTP 401'), { upstreamStatus: 401 }), SCOPE, 'warn: watcher: upstream lookups failed; the ids stay watched'],
    [Object.assign(new errors.UpstreamError('HTTP 500'), { upstreamStatus: 500 }), tenant, 'warn: watcher: upstream lookups failed; the ids stay watched']
  ]
  for (const [error, scope, line] of cases) {
    loader.failing = error
    logged.length = 0
    const h = watcher.watch({ ids: ['a'], scope, client: 'c1', onEvent: () => {} })
    await settle()
    t.strictSame(logged, [line], (error as GatewayError).code)
    h.close()
  }
})

t.test('a watch that joins while a failing read is in flight gets the last good state at once', async (t) => {
  const { watcher, loader } = make()
  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '31%' })
  const first = collect()
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c1', onEvent: first.onEvent })
  await settle()
  loader.failing = new errors.UpstreamUnavailable('down')
  await watcher.tick()
  t.same(first.summary(), ['a:IN_PROGRESS:31%', 'a:error:UPSTREAM_UNAVAILABLE:retrying'])

  const release = loader.hold()
  const ticking = watcher.tick()
  const late = collect()
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c2', onEvent: late.onEvent })
  await settle()
  t.same(late.summary(), ['a:IN_PROGRESS:31%'], 'the known state, without waiting for the read in flight')
  release()
  await ticking
  t.same(late.summary(), ['a:IN_PROGRESS:31%'], 'the failing read adds nothing')
  loader.failing = undefined
  await watcher.tick()
  t.same(late.summary(), ['a:IN_PROGRESS:31%'], 'recovery with the same state: no duplicate')
  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '46%' })
  await watcher.tick()
  t.same(late.summary(), ['a:IN_PROGRESS:31%', 'a:IN_PROGRESS:46%'])
})

t.test('a watch that joins while a failing read is in flight, with no state known yet, gets the outage at once and once', async (t) => {
  const { watcher, loader } = make()
  loader.failing = new errors.UpstreamUnavailable('down')
  const first = collect()
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c1', onEvent: first.onEvent })
  await settle()
  t.same(first.summary(), ['a:error:UPSTREAM_UNAVAILABLE:retrying'])

  const release = loader.hold()
  const ticking = watcher.tick()
  const late = collect()
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c2', onEvent: late.onEvent })
  await settle()
  t.same(late.summary(), ['a:error:UPSTREAM_UNAVAILABLE:retrying'], 'the current outage, without waiting for the read in flight')
  release()
  await ticking
  await watcher.tick()
  t.same(late.summary(), ['a:error:UPSTREAM_UNAVAILABLE:retrying'], 'and only once')
  loader.failing = undefined
  loader.tasks.set('a', { id: 'a', status: 'SUBMITTED', progress: '0%' })
  await watcher.tick()
  t.same(late.summary().at(-1), 'a:SUBMITTED:0%')
})

t.test('a watch that joins while an entry\'s first read is in flight gets its state once, when the read lands', async (t) => {
  const { watcher, loader } = make()
  loader.tasks.set('a', { id: 'a', status: 'SUBMITTED', progress: '0%' })
  const release = loader.hold()
  const first = collect()
  const late = collect()
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c1', onEvent: first.onEvent })
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c2', onEvent: late.onEvent })
  await settle()
  t.same(late.summary(), [])
  release()
  await settle()
  t.same(first.summary(), ['a:SUBMITTED:0%'])
  t.same(late.summary(), ['a:SUBMITTED:0%'])
})

t.test('seen versions (a resume) are not sent again', async (t) => {
  const { watcher, loader } = make()
  const a: UpstreamTask = { id: 'a', status: 'IN_PROGRESS', progress: '31%' }
  const b: UpstreamTask = { id: 'b', status: 'IN_PROGRESS', progress: '46%' }
  loader.tasks.set('a', a)
  loader.tasks.set('b', b)
  const c = collect()
  watcher.watch({ ids: ['a', 'b'], scope: SCOPE, client: 'c1', seen: new Map([['a', taskVersion(a)], ['b', 'old']]), onEvent: c.onEvent })
  await settle()
  t.same(c.summary(), ['b:IN_PROGRESS:46%'])
})

t.test('limits: ids per stream, streams per client, ids in total', async (t) => {
  const { watcher } = make({ maxIdsPerConnection: 3, maxConnectionsPerClient: 2, maxIds: 5 })
  const noop = (): void => {}
  t.throws(() => watcher.watch({ ids: ['1', '2', '3', '4'], scope: SCOPE, client: 'x', onEvent: noop }), { code: 'GW_ERR_WATCH_TOO_MANY_IDS', statusCode: 400 })
  const h1 = watcher.watch({ ids: ['1', '2', '3'], scope: SCOPE, client: 'x', onEvent: noop })
  watcher.watch({ ids: ['1', '2'], scope: SCOPE, client: 'x', onEvent: noop })
  t.throws(() => watcher.watch({ ids: ['1'], scope: SCOPE, client: 'x', onEvent: noop }), { code: 'GW_ERR_WATCH_TOO_MANY_STREAMS', statusCode: 429 })
  watcher.watch({ ids: ['3', '4', '5'], scope: SCOPE, client: 'y', onEvent: noop })
  t.throws(() => watcher.watch({ ids: ['6'], scope: SCOPE, client: 'z', onEvent: noop }), { code: 'GW_ERR_WATCH_FULL', statusCode: 503 })
  t.throws(() => watcher.watch({ ids: ['6'], scope: { partition: 'other', credential: 'k' }, client: 'z', onEvent: noop }), { code: 'GW_ERR_WATCH_FULL' }, 'other partitions count toward the total')
  t.equal(watcher.stats.ids, 5, 'a refused watch registered nothing')
  h1.close()
  watcher.watch({ ids: ['1'], scope: SCOPE, client: 'x', onEvent: noop })
  t.equal(watcher.stats.clients, 2)
})

t.test('the timer runs only while something is watched; ticks are chained', async (t) => {
  const { watcher, loader, timers } = make()
  loader.tasks.set('a', { id: 'a', status: 'SUBMITTED', progress: '0%' })
  t.equal(timers.pending.size, 0)
  const h = watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c', onEvent: () => {} })
  t.equal(timers.pending.size, 1)
  const [fire] = [...timers.pending.values()]
  timers.pending.clear()
  fire!()
  t.equal(timers.pending.size, 0, 'no next tick while one runs')
  await settle()
  t.equal(timers.pending.size, 1, 'the next tick is scheduled when this one ends')
  t.equal(watcher.stats.ticks, 1)
  h.close()
  t.equal(timers.pending.size, 0, 'the last watch going away clears the timer')
})

t.test('close ends every watch with shutdown and leaves nothing', async (t) => {
  const { watcher, loader, timers } = make()
  loader.tasks.set('a', { id: 'a', status: 'SUBMITTED', progress: '0%' })
  const c = collect()
  const h = watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c', onEvent: c.onEvent })
  await settle()
  watcher.close()
  t.same(c.summary(), ['a:SUBMITTED:0%', 'shutdown'])
  t.ok(h.closed)
  t.equal(timers.pending.size, 0)
  t.throws(() => watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c', onEvent: () => {} }), { code: 'GW_ERR_OVERLOADED' })
})

t.test('a listener that throws loses its watch, nobody else does', async (t) => {
  const { watcher, loader } = make()
  loader.tasks.set('a', { id: 'a', status: 'SUBMITTED', progress: '0%' })
  const good = collect()
  const bad = watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c', onEvent: () => { throw new Error('boom') } })
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c', onEvent: good.onEvent })
  await settle()
  t.ok(bad.closed)
  t.same(good.summary(), ['a:SUBMITTED:0%'])
})

t.test('leak: 1000 watches come and go, the watch set returns to empty', async (t) => {
  const { watcher, loader, timers } = make({ maxConnectionsPerClient: 1000, maxIdsPerConnection: 5 })
  for (let i = 0; i < 20; i++) loader.tasks.set(`t${i}`, { id: `t${i}`, status: 'IN_PROGRESS', progress: '31%' })
  const handles = []
  for (let i = 0; i < 1000; i++) {
    handles.push(watcher.watch({ ids: [0, 1, 2, 3, 4].map((k) => `t${(i + k * 3) % 20}`), scope: SCOPE, client: 'c', onEvent: () => {} }))
    if (i % 100 === 99) await watcher.tick()
  }
  t.equal(watcher.stats.ids, 20)
  for (const h of handles) h.close()
  await watcher.tick()
  t.same(watcher.stats, { ids: 0, partitions: 0, watches: 0, clients: 0, timerArmed: false, ticks: watcher.stats.ticks })
  t.equal(timers.pending.size, 0)
})

t.test('fan-in: 200 subscribers over 50 ids cost ceil(50 / BATCH_MAX_IDS) upstream calls per interval', async (t) => {
  const { sim, url, key } = await startSimulator(t, { durationMs: 60_000 })
  const ids = Array.from({ length: 50 }, (_, i) => sim.createTask(key, { prompt: `fan-in task ${i}` }))
  const clock = new ManualClock()
  const BATCH_MAX_IDS = 20
  const app = await buildApp({
    upstream: { baseUrl: url, key },
    batch: { maxIds: BATCH_MAX_IDS },
    watch: { intervalMs: 3_600_000, maxConnectionsPerClient: 1000 }
  }, { logger: false, now: clock.now })
  t.teardown(() => app.close())
  await app.ready()

  const perTask = new Map<string, number>()
  const received: string[][] = []
  // Every subscriber's first 15 states mean every joining read has landed: only then may a tick start.
  let firstStates = 0
  let allJoined!: () => void
  const joined = new Promise<void>((resolve) => { allJoined = resolve })
  for (let s = 0; s < 200; s++) {
    // Overlapping windows of 15 ids: every id is watched by many subscribers.
    const mine = Array.from({ length: 15 }, (_, k) => ids[(s * 7 + k) % 50]!)
    const log: string[] = []
    received.push(log)
    app.watcher.watch({
      ids: mine,
      scope: SCOPE,
      client: `client-${s % 10}`,
      onEvent: (e) => {
        if (e.type !== 'task') return
        log.push(`${e.id}@${e.version}`)
        perTask.set(e.id, (perTask.get(e.id) ?? 0) + 1)
        if (++firstStates === 200 * 15) allJoined()
      }
    })
  }
  await joined
  t.equal(app.watcher.stats.ids, 50)
  t.equal(app.watcher.stats.watches, 200)
  const joining = sim.calls.length
  t.ok(joining <= Math.ceil(50 / BATCH_MAX_IDS), `200 subscribers joining: ${joining} upstream calls`)
  t.ok(received.every((log) => log.length === 15), 'every subscriber got the current state of each of its ids')

  const limit = Math.ceil(50 / BATCH_MAX_IDS)
  for (let tick = 0; tick < 6; tick++) {
    sim.advance(3_000)
    clock.advance(3_000) // past CACHE_TTL_MS: each tick really asks upstream
    const before = sim.calls.length
    await app.watcher.tick()
    const calls = sim.calls.slice(before)
    const asked = calls.flatMap((c) => c.ids ?? [])
    t.ok(calls.length <= limit, `tick ${tick}: ${calls.length} upstream calls (limit ${limit})`)
    t.equal(new Set(asked).size, 50, `tick ${tick}: every watched id asked for`)
    t.equal(asked.length, 50, `tick ${tick}: each id once`)
  }
  const duplicates = received.filter((log) => new Set(log).size !== log.length)
  t.same(duplicates, [], 'no subscriber got the same state twice')
  t.ok([...perTask.values()].every((n) => n > 200 * 15 / 50), 'states changed over the ticks and reached every subscriber')
})

/** Timers that record the delay each one was set for. */
class DelayTimers implements WatchTimers {
  readonly delays: number[] = []
  setTimeout (_fn: () => void, ms: number): unknown { this.delays.push(ms); return this.delays.length }
  clearTimeout (): void {}
}

t.test('aligned (shared tier on): ticks wait for the next multiple of the interval on the wall clock', async (t) => {
  const clock = new ManualClock(1_700_000_000_250)
  const timers = new DelayTimers()
  const { watcher, loader } = make({ timers, alignTo: clock.now })
  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '1%' })
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c1', onEvent: () => {} })
  await settle()
  t.strictSame(timers.delays, [750], 'to the next whole second, where every replica ticks too')
  clock.advance(750 + 999)
  await watcher.tick()
  t.strictSame(timers.delays, [750, 1], 'a tick that ends just before a boundary waits only for it')
  clock.advance(1)
  await watcher.tick()
  t.strictSame(timers.delays, [750, 1, 1000], 'on a boundary: a whole interval, never zero')
})

t.test('refresh reads the ids an answer just landed for, at once; unwatched ids and reads in flight are left alone', async (t) => {
  const { watcher, loader } = make()
  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '1%' })
  const c = collect()
  watcher.watch({ ids: ['a'], scope: SCOPE, client: 'c1', onEvent: c.onEvent })
  await settle()
  t.equal(watcher.watching('shared', 'a'), true)
  t.equal(watcher.watching('shared', 'b'), false)
  t.equal(watcher.watching('cred:other', 'a'), false)

  loader.tasks.set('a', { id: 'a', status: 'IN_PROGRESS', progress: '50%' })
  watcher.refresh('shared', ['a', 'b'])
  await settle()
  t.strictSame(c.summary(), ['a:IN_PROGRESS:1%', 'a:IN_PROGRESS:50%'], 'the change, without a tick')
  t.strictSame(loader.calls, [['a'], ['a']], 'only the watched id was read')
  t.equal(watcher.stats.ticks, 0)

  const release = loader.hold()
  const ticking = watcher.tick()
  watcher.refresh('shared', ['a'])
  t.equal(loader.calls.length, 3, 'a read already in flight is not doubled')
  release()
  await ticking
})
