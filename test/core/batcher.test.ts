import t from 'tap'
import { answersOf } from '../../src/upstream/fetch-tasks.js'
import { pino } from 'pino'
import { Batcher } from '../../src/core/batcher.js'
import { normalizeConfig } from '../../src/config.js'
import { UpstreamClient } from '../../src/upstream/client.js'
import { FakeUpstream } from '../helpers/fake-upstream.js'
import { setup, until } from '../helpers/gateway.js'

const get = (app: Awaited<ReturnType<typeof setup>>['app'], url: string) => app.inject({ method: 'GET', url })

t.test('merges concurrent lookups from separate requests into one upstream call', async (t) => {
  const { app, upstream } = await setup(t)
  const ids = upstream.add(...Array.from({ length: 20 }, (_, i) => ({ id: `10${i}` })))
  const responses = await Promise.all(ids.map((id) => get(app, `/v1/tasks/${id}`)))
  t.same(responses.map((r) => r.json().id), ids, 'each request got its own task')
  t.equal(upstream.calls.length, 1, 'one upstream call served all twenty requests')
  t.same([...upstream.calls[0]!.ids].sort(), [...ids].sort())
})

t.test('sends a lone lookup at once instead of waiting for a window', async (t) => {
  // With a 10 s window, a lookup that waited for it would time this test out.
  const { app, upstream } = await setup(t, { batch: { windowMs: 10_000 } })
  upstream.add({ id: '1' })
  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 200)
  t.same(upstream.calls.map((c) => c.ids), [['1']])
})

t.test('holds partial batches while upstream is busy and merges them into one call when a call settles', async (t) => {
  const { app, upstream } = await setup(t, { batch: { maxInFlight: 1, windowMs: 10_000 } })
  upstream.add({ id: '1' }, { id: '2' }, { id: '3' }, { id: '4' })
  upstream.hold()
  const first = get(app, '/v1/tasks/1')
  await upstream.waitForCalls(1)
  const later = [get(app, '/v1/tasks/2'), get(app, '/v1/tasks?ids=3,4')]
  await until(() => app.gateway.batcher.stats.queued === 3)
  t.equal(upstream.calls.length, 1, 'nothing more is sent while the first call is in flight')
  upstream.release()
  const results = await Promise.all([first, ...later])
  t.same(results.map((r) => r.statusCode), [200, 200, 200])
  t.same(upstream.calls.map((c) => c.ids), [['1'], ['2', '3', '4']], 'the held lookups went out together')
})

t.test('sends a held batch when the window closes even while upstream is still busy', async (t) => {
  const { app, upstream } = await setup(t, { batch: { maxInFlight: 1, windowMs: 5 } })
  upstream.add({ id: '1' }, { id: '2' })
  upstream.hold()
  const first = get(app, '/v1/tasks/1')
  await upstream.waitForCalls(1)
  const second = get(app, '/v1/tasks/2')
  await upstream.waitForCalls(2)
  t.same(upstream.calls.map((c) => c.ids), [['1'], ['2']], 'the second call went out before the first settled')
  upstream.release()
  t.same((await Promise.all([first, second])).map((r) => r.statusCode), [200, 200])
})

t.test('joins a lookup to the upstream call already in flight for its id', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '42', prompt: 'a cat' })
  upstream.hold()
  const a = get(app, '/v1/tasks/42')
  await upstream.waitForCalls(1)
  const b = app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ task(id: "42") { prompt } }' } })
  await until(() => app.gateway.batcher.stats.inFlight === 1)
  upstream.release()
  const [ra, rb] = await Promise.all([a, b])
  t.equal(ra.json().prompt, 'a cat')
  t.same(rb.json(), { data: { task: { prompt: 'a cat' } } })
  t.equal(upstream.calls.length, 1, 'the second lookup did not make a call of its own')
})

t.test('returns request order with nulls for unknown ids and repeats for repeated ids', async (t) => {
  const { app, upstream } = await setup(t)
  // The fake answers in storage order (3, 1, 2), as upstream does.
  upstream.add({ id: '3' }, { id: '1' }, { id: '2' })
  const res = await get(app, '/v1/tasks?ids=2,404,1,3,2')
  t.same(res.json().map((task: { id: string } | null) => task?.id ?? null), ['2', null, '1', '3', '2'])
  t.same(upstream.calls.map((c) => c.ids), [['2', '404', '1', '3']], 'a repeated id is asked for once')
})

t.test('splits a batch larger than BATCH_MAX_IDS into chunks', async (t) => {
  const { app, upstream } = await setup(t, { batch: { maxIds: 3 } })
  const ids = upstream.add(...['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7'].map((id) => ({ id })))
  const res = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { ids } })
  t.same(res.json().map((task: { id: string }) => task.id), ids)
  t.same(upstream.calls.map((c) => c.ids).sort(), [['a1', 'a2', 'a3'], ['a4', 'a5', 'a6'], ['a7']])
})

t.test('fails only the ids of the chunk that failed, and never caches the failure', async (t) => {
  const { app, upstream } = await setup(t, { batch: { maxIds: 2 } })
  upstream.add({ id: '1' }, { id: '2' }, { id: '3' }, { id: '4' })
  upstream.script({ kind: 'status', status: 500 })
  const res = await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ tasks(ids: ["1", "2", "3", "4"]) { id } }' } })
  const body = res.json()
  t.equal(upstream.calls.length, 2)
  const failed = new Set(upstream.calls[0]!.ids)
  t.same(body.data.tasks.map((task: { id: string } | null, i: number) => task === null ? `failed ${i + 1}` : task.id),
    ['1', '2', '3', '4'].map((id) => failed.has(id) ? `failed ${id}` : id))
  t.same(body.errors.map((e: { path: unknown[] }) => e.path[1]).sort(), [...failed].map((id) => Number(id) - 1).sort())
  t.ok(body.errors.every((e: { extensions: { code: string } }) => e.extensions.code === 'UPSTREAM_ERROR'))

  const again = await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ tasks(ids: ["1", "2", "3", "4"]) { id } }' } })
  t.same(again.json(), { data: { tasks: [{ id: '1' }, { id: '2' }, { id: '3' }, { id: '4' }] } })
  t.same(upstream.calls[2]!.ids, [...failed], 'only the failed ids were asked for again')
})

t.test('refuses new lookups with 503 once BATCH_MAX_QUEUED are waiting', async (t) => {
  const { app, upstream } = await setup(t, { batch: { maxQueued: 2 } })
  upstream.add({ id: '1' }, { id: '2' }, { id: '3' })
  upstream.hold()
  const waiting = get(app, '/v1/tasks?ids=1,2')
  await upstream.waitForCalls(1)
  const refused = await get(app, '/v1/tasks/3')
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'GW_ERR_OVERLOADED')
  upstream.release()
  t.equal((await waiting).statusCode, 200)
  t.equal(upstream.calls.length, 1)
})

t.test('forgets idle partitions once their calls settle', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1' })
  await get(app, '/v1/tasks/1')
  t.same(app.gateway.batcher.stats, { lanes: 0, queued: 0, inFlight: 0, activeCalls: 0 })
})

t.test('a throwing observer never strands the lookups of its batch', async (t) => {
  const upstream = await FakeUpstream.start()
  t.teardown(() => upstream.close())
  upstream.add({ id: '1' }, { id: '2' })
  const client = new UpstreamClient({ ...normalizeConfig({ upstream: { baseUrl: upstream.url } }).upstream, logger: pino({ level: 'silent' }) })
  t.teardown(() => client.close())
  const observed: string[] = []
  const batcher = new Batcher({
    ...normalizeConfig().batch,
    fetch: async (ids) => answersOf(ids, await client.listByCondition(ids)),
    onResult: () => { throw new Error('cache broke') },
    onBatch: () => { throw new Error('metrics broke') },
    onObserverError: (err) => observed.push(err.message)
  })
  const scope = { partition: 'p', credential: undefined }
  const [a, b] = await Promise.all([batcher.load('1', scope), batcher.load('2', scope)])
  t.strictSame([a?.task.id, b?.task.id], ['1', '2'], 'both lookups resolved')
  t.same(observed, ['cache broke', 'cache broke', 'metrics broke'], 'each failure was reported')
  t.same(batcher.stats, { lanes: 0, queued: 0, inFlight: 0, activeCalls: 0 }, 'and the lane was released')
})

t.test('fetch answers per id, as dataloader: a task, null for unknown, an Error for that id alone', async (t) => {
  const asked: string[][] = []
  const broken = new Error('task 3: field status is number, expected string')
  const batcher = new Batcher({
    ...normalizeConfig().batch,
    fetch: async (ids) => {
      asked.push([...ids])
      return ids.map((id) => id === '2' ? null : id === '3' ? broken : { id, status: 'SUCCESS' })
    }
  })
  const scope = { partition: 'p', credential: undefined }
  const settled = await Promise.allSettled(['1', '2', '3'].map((id) => batcher.load(id, scope)))
  t.strictSame(asked, [['1', '2', '3']], 'one call for the three ids')
  t.strictSame(settled, [
    { status: 'fulfilled', value: { id: '1', status: 'SUCCESS' } },
    { status: 'fulfilled', value: null },
    { status: 'rejected', reason: broken }
  ])
})

t.test('a fetch that answers the wrong number of values fails its whole chunk', async (t) => {
  const batcher = new Batcher({ ...normalizeConfig().batch, fetch: async () => [null] })
  const scope = { partition: 'p', credential: undefined }
  const settled = await Promise.allSettled(['1', '2'].map((id) => batcher.load(id, scope)))
  t.strictSame(settled.map((s) => s.status), ['rejected', 'rejected'])
  t.equal((settled[0] as PromiseRejectedResult).reason.message, 'fetch answered 1 values for 2 ids')
})
