import t from 'tap'
import { TaskCache } from '../../src/core/task-cache.js'
import { StoredTask } from '../../src/core/stored-task.js'
import type { UpstreamTask } from '../../src/upstream/types.js'

const stored = (task: UpstreamTask): StoredTask => StoredTask.from(task)
import { ManualClock } from '../helpers/gateway.js'

function cache (clock: ManualClock, opts: Partial<ConstructorParameters<typeof TaskCache>[0]> = {}): TaskCache {
  return new TaskCache({ maxEntries: 100, ttlMs: 2000, finalTtlMs: 60_000, notFoundTtlMs: 500, staleMs: 10_000, now: clock.now, ...opts })
}

t.test('an unfinished task is fresh for the TTL, then stale, then gone', async (t) => {
  const clock = new ManualClock()
  const c = cache(clock)
  c.set('p', '1', stored({ id: '1', status: 'IN_PROGRESS' }))
  t.ok(c.isFresh(c.get('p', '1')!))
  clock.advance(1999)
  t.ok(c.isFresh(c.get('p', '1')!))
  clock.advance(1)
  t.notOk(c.isFresh(c.get('p', '1')!), 'past the TTL the entry is stale')
  clock.advance(10_000)
  t.ok(c.get('p', '1'), 'kept to the last millisecond of the stale window')
  clock.advance(1)
  t.equal(c.get('p', '1'), undefined, 'past the stale window it is gone')
})

t.test('a final task lives for the final TTL', async (t) => {
  const clock = new ManualClock()
  const c = cache(clock)
  for (const status of ['SUCCESS', 'FAILURE', 'CANCEL']) c.set('p', status, stored({ id: status, status }))
  c.set('p', 'modal', stored({ id: 'modal', status: 'MODAL' }))
  clock.advance(2_000)
  t.notOk(c.isFresh(c.get('p', 'modal')!), 'MODAL is not final: it expires with the short TTL')
  clock.advance(57_999)
  for (const status of ['SUCCESS', 'FAILURE', 'CANCEL']) t.ok(c.isFresh(c.get('p', status)!), `${status} still fresh`)
  clock.advance(1)
  for (const status of ['SUCCESS', 'FAILURE', 'CANCEL']) t.notOk(c.isFresh(c.get('p', status)!), `${status} expires after the final TTL`)
})

t.test('an unknown id is remembered only briefly and never served stale', async (t) => {
  const clock = new ManualClock()
  const c = cache(clock)
  c.set('p', 'x', null)
  t.equal(c.get('p', 'x')!.stored, null)
  clock.advance(500)
  t.notOk(c.isFresh(c.get('p', 'x')!), 'no longer fresh after the not-found TTL')
  clock.advance(1)
  t.equal(c.get('p', 'x'), undefined, 'and no stale window is kept for it')
})

t.test('partitions never see each other\'s entries', async (t) => {
  const c = cache(new ManualClock())
  c.set('tenant-a', '1', stored({ id: '1', prompt: 'a' }))
  t.equal(c.get('tenant-b', '1'), undefined)
  t.equal(c.get('tenant-a', '1')!.stored!.task.prompt, 'a')
})

t.test('is bounded by maxEntries, evicting the least recently used', async (t) => {
  const c = cache(new ManualClock(), { maxEntries: 3 })
  for (const id of ['1', '2', '3']) c.set('p', id, stored({ id }))
  c.get('p', '1')
  c.set('p', '4', stored({ id: '4' }))
  t.equal(c.size, 3)
  t.equal(c.get('p', '2'), undefined, 'the least recently used entry went')
  t.ok(c.get('p', '1'))
})

t.test('a TTL of 0 turns the cache off', async (t) => {
  const c = cache(new ManualClock(), { ttlMs: 0 })
  c.set('p', '1', stored({ id: '1', status: 'SUCCESS' }))
  t.equal(c.get('p', '1'), undefined)
  t.equal(c.enabled, false)
})

t.test('a copy from elsewhere keeps its own expiry, and never replaces a newer answer', async (t) => {
  const clock = new ManualClock()
  const c = cache(clock)
  const fetchedElsewhere = { stored: stored({ id: '1', progress: '10%' }), storedAt: clock.time - 1500, freshUntil: clock.time + 500 }
  c.put('p', '1', fetchedElsewhere)
  t.equal(c.get('p', '1'), fetchedElsewhere)
  clock.advance(500)
  t.notOk(c.isFresh(c.get('p', '1')!), 'stale when the original is, not a TTL after the copy')
  clock.advance(10_000)
  t.ok(c.get('p', '1'), 'kept to the last millisecond of the stale window after its own freshness')
  clock.advance(1)
  t.equal(c.get('p', '1'), undefined)

  c.set('p', '2', stored({ id: '2', progress: '80%' }))
  c.put('p', '2', { stored: stored({ id: '2', progress: '40%' }), storedAt: clock.time - 1, freshUntil: clock.time + 1000 })
  t.equal(c.get('p', '2')!.stored!.task.progress, '80%', 'the older copy is ignored')
  c.put('p', '3', { stored: null, storedAt: clock.time - 600, freshUntil: clock.time - 100 })
  t.equal(c.get('p', '3'), undefined, 'an expired unknown is not kept at all')
})

t.test('entryFor gives the entry an answer makes and how long it is kept, as L2 stores it', async (t) => {
  const clock = new ManualClock()
  const c = cache(clock)
  const done = stored({ id: '1', status: 'SUCCESS' })
  t.strictSame(c.entryFor(done), { entry: { stored: done, storedAt: clock.time, freshUntil: clock.time + 60_000 }, keepMs: 70_000 })
  t.strictSame(c.entryFor(null), { entry: { stored: null, storedAt: clock.time, freshUntil: clock.time + 500 }, keepMs: 500 })
  t.equal(c.set('p', 'x', stored({ id: 'x' }))!.freshUntil, clock.time + 2000, 'set returns what it stored')
})

t.test('keeps a task as text: upstream\'s row for the drop-in routes, "" times as null for REST', async (t) => {
  const c = cache(new ManualClock())
  c.set('p', '1', stored({ id: '1', status: 'SUCCESS', submitTime: 1730000000000, startTime: '' as never, finishTime: 0 }))
  const entry = c.get('p', '1')!.stored!
  t.equal(entry.raw, '{"id":"1","status":"SUCCESS","submitTime":1730000000000,"startTime":"","finishTime":0}')
  t.equal(entry.rest, '{"id":"1","status":"SUCCESS","submitTime":1730000000000,"startTime":null,"finishTime":0}')
  t.strictSame(entry.task, { id: '1', status: 'SUCCESS', submitTime: 1730000000000, startTime: '', finishTime: 0 })
  entry.task.status = 'FAILURE'
  t.equal(entry.task.status, 'SUCCESS', 'every reader gets its own copy')
})
