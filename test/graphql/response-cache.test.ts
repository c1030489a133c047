import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { ManualClock, setup } from '../helpers/gateway.js'

const QUERY = 'query Poll($ids: [ID!]!) { tasks(ids: $ids) { id status progress } }'

async function poll (app: FastifyInstance, ids: string[], headers: Record<string, string> = {}): Promise<{ status: number, body: string, type: string | undefined }> {
  const res = await app.inject({ method: 'POST', url: '/graphql', headers, payload: { query: QUERY, operationName: 'Poll', variables: { ids } } })
  return { status: res.statusCode, body: res.body, type: res.headers['content-type'] as string | undefined }
}

t.test('a repeated query is answered from the response cache until a task it read expires', async (t) => {
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, { cache: { ttlMs: 2_000 } }, { now: clock.now })
  upstream.add({ id: '1', status: 'IN_PROGRESS', progress: '31%' }, { id: '2', status: 'SUCCESS', progress: '100%' })
  const first = await poll(app, ['1', '2'])
  t.equal(first.status, 200)
  t.strictSame(JSON.parse(first.body), { data: { tasks: [{ id: '1', status: 'IN_PROGRESS', progress: '31%' }, { id: '2', status: 'SUCCESS', progress: '100%' }] } })
  t.equal(upstream.calls.length, 1)

  const again = await poll(app, ['1', '2'])
  t.equal(again.body, first.body, 'the same bytes')
  t.equal(again.type, first.type)
  t.equal(upstream.calls.length, 1, 'no upstream call')

  // Task 1 changes upstream; the cached response must not outlive task 1's freshness.
  upstream.add({ id: '1', status: 'SUCCESS', progress: '100%' })
  clock.advance(2_000)
  const later = await poll(app, ['1', '2'])
  t.strictSame(JSON.parse(later.body).data.tasks[0], { id: '1', status: 'SUCCESS', progress: '100%' }, 'the changed task, never the old body')
  t.strictSame(upstream.calls.map((c) => c.ids), [['1', '2'], ['1']], 'only the expired task was asked for again')
})

t.test('a task replaced in the task cache drops every response built from it', async (t) => {
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, { cache: { ttlMs: 60_000 } }, { now: clock.now })
  upstream.add({ id: '1', progress: '31%' })
  await poll(app, ['1'])
  // A REST read of a second id does not touch the response; a fresh fetch of id 1 (here: after eviction) does.
  upstream.add({ id: '1', progress: '46%' })
  app.gateway.cache.delete('shared', '1')
  const after = await poll(app, ['1'])
  t.equal(JSON.parse(after.body).data.tasks[0].progress, '46%')
  t.equal(upstream.calls.length, 2)
})

t.test('responses never cross partitions under pass-through', async (t) => {
  const { app, upstream } = await setup(t, { upstream: { auth: 'passthrough', key: undefined } })
  upstream.add({ id: '7', progress: '31%' })
  upstream.owners.set('7', 'sk-tenant-a-0000000000000001')
  const a = await poll(app, ['7'], { authorization: 'Bearer sk-tenant-a-0000000000000001' })
  const b = await poll(app, ['7'], { authorization: 'Bearer sk-tenant-b-0000000000000002' })
  t.strictSame(JSON.parse(a.body).data.tasks, [{ id: '7', status: 'IN_PROGRESS', progress: '31%' }])
  t.strictSame(JSON.parse(b.body).data.tasks, [null], 'tenant B does not get tenant A\'s response')
  t.equal(upstream.calls.length, 2)
})

t.test('a stale answer is marked, and never kept as a reusable response', async (t) => {
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, { cache: { ttlMs: 1_000, staleMs: 60_000 }, upstream: { retries: 0 } }, { now: clock.now })
  upstream.add({ id: '1', progress: '31%' })
  await poll(app, ['1'])
  clock.advance(1_000)
  upstream.script({ kind: 'status', status: 500 })
  const stale = JSON.parse((await poll(app, ['1'])).body)
  t.strictSame(stale.extensions, { stale: [{ id: '1', ageMs: 1_000 }] })
  const recovered = await poll(app, ['1'])
  t.equal(JSON.parse(recovered.body).extensions, undefined, 'upstream is back: a fresh answer, not the stale body again')
  t.equal(upstream.calls.length, 3, 'each request after expiry went to the loader')
})

t.test('the media type asked for is part of the key', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1' })
  const json = await poll(app, ['1'])
  const graphqlType = await poll(app, ['1'], { accept: 'application/graphql-response+json' })
  t.equal(json.type, 'application/json; charset=utf-8')
  t.equal(graphqlType.type, 'application/graphql-response+json; charset=utf-8')
  t.equal(graphqlType.body, json.body)
})

t.test('a response with an error in it is executed again, never reused', async (t) => {
  const { app, upstream } = await setup(t)
  const body = [{ id: '1', status: 'SUCCESS' }, { id: '2', status: 5 }]
  upstream.script({ kind: 'json', body }, { kind: 'json', body })
  const first = JSON.parse((await poll(app, ['1', '2'])).body)
  t.strictSame(first.data, { tasks: [{ id: '1', status: 'SUCCESS', progress: null }, null] })
  t.equal(first.errors[0].extensions.code, 'UPSTREAM_BAD_RESPONSE')
  const second = JSON.parse((await poll(app, ['1', '2'])).body)
  t.strictSame(second, first)
  t.strictSame(upstream.calls.map((c) => c.ids), [['1', '2'], ['2']], 'the second request executed: the bad id was asked for again')
})
