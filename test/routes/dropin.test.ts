import t from 'tap'
import { setup, TEST_KEY, until } from '../helpers/gateway.js'

t.test('POST /mj/task/list-by-condition answers with the found tasks only, as upstream does', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1', videoUrl: 'https://x/v.mp4', botType: 'MID_JOURNEY' }, { id: '2' })
  const res = await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: ['2', 'unknown', '1', '2'] } })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(body.map((task: { id: string }) => task.id), ['2', '1'], 'unknown ids left out, duplicates collapsed')
  t.equal(body[1].videoUrl, 'https://x/v.mp4', 'extra upstream fields pass through')
  t.same(upstream.calls, [{ ids: ['2', 'unknown', '1'], authorization: `Bearer ${TEST_KEY}` }])
})

t.test('list-by-condition answers a missing or empty ids list with [] and no upstream call', async (t) => {
  const { app, upstream } = await setup(t)
  for (const payload of [{}, { ids: [] }, { ids: null }, { other: 1 }]) {
    const res = await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', payload })
    t.same(res.json(), [], JSON.stringify(payload))
  }
  t.equal(upstream.calls.length, 0)
})

t.test('list-by-condition answers a body it cannot read with upstream\'s own 400 body', async (t) => {
  const { app } = await setup(t)
  const notJson = await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', headers: { 'content-type': 'application/json' }, payload: 'ids=1' })
  t.equal(notJson.statusCode, 400)
  t.same(notJson.json(), { description: 'do_request_failed ', type: 'upstream_error', code: 4 })
  const notArray = await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: '1' } })
  t.same(notArray.json(), { description: 'do_request_failed: ids must be an array of strings', type: 'upstream_error', code: 4 })
  const badId = await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: ['1', 'a b'] } })
  t.equal(badId.statusCode, 400)
  t.match(badId.json().description, /ids\[1\] has characters outside/)
})

t.test('GET /mj/task/:id/fetch returns one task, or upstream\'s task_no_found', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '11', prompt: 'a boat' })
  const found = await app.inject('/mj/task/11/fetch')
  t.equal(found.statusCode, 200)
  t.equal(found.json().prompt, 'a boat')
  const missing = await app.inject('/mj/task/12/fetch')
  t.equal(missing.statusCode, 400)
  t.same(missing.json(), { description: 'task_no_found ', type: 'upstream_error', code: 4 })
})

t.test('drop-in routes share the batcher and cache with the other surfaces', async (t) => {
  const { app, upstream } = await setup(t, { batch: { maxInFlight: 1, windowMs: 10_000 } })
  upstream.add({ id: '1' }, { id: '2' }, { id: '3' }, { id: '9' })
  upstream.hold()
  const first = app.inject('/v1/tasks/9')
  await upstream.waitForCalls(1)
  const surfaces = Promise.all([
    app.inject('/mj/task/1/fetch'),
    app.inject({ method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: ['2', '1'] } }),
    app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ tasks(ids: ["3", "1"]) { id } }' } })
  ])
  await until(() => app.gateway.batcher.stats.queued === 3)
  upstream.release()
  await Promise.all([first, surfaces])
  t.same(upstream.calls.map((c) => c.ids), [['9'], ['1', '2', '3']], 'three surfaces, one upstream call, each id once')
  const rest = await app.inject('/v1/tasks?ids=1,2,3')
  t.equal(rest.headers['x-cache'], 'hit')
  t.equal(upstream.calls.length, 2, 'and the REST mirror is answered from the same cache')
})

t.test('drop-in routes report gateway-side upstream failures with the coded gateway error', async (t) => {
  const { app, upstream } = await setup(t, { upstream: { retries: 0 } })
  upstream.script({ kind: 'status', status: 502 })
  const res = await app.inject('/mj/task/1/fetch')
  t.equal(res.statusCode, 502)
  t.equal(res.json().code, 'UPSTREAM_ERROR')
})
