import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { ManualClock, setup } from '../helpers/gateway.js'

/**
 * stale-if-error: a task past its fresh TTL (2 s for an unfinished task by
 * default) but within CACHE_STALE_MS (60 s) is served, marked stale, when
 * upstream fails or the breaker is open. Beyond that, or for an id never
 * seen, the client gets the error.
 */

const get = (app: FastifyInstance, url: string) => app.inject({ method: 'GET', url })
const gql = (app: FastifyInstance, query: string) => app.inject({ method: 'POST', url: '/graphql', payload: { query } })

async function seeded (t: Test, options: Parameters<typeof setup>[1] = {}) {
  const clock = new ManualClock()
  const gw = await setup(t, options, { now: clock.now })
  gw.upstream.add({ id: '1', status: 'IN_PROGRESS', progress: '40%' }, { id: '2', status: 'IN_PROGRESS', progress: '10%' })
  return { ...gw, clock }
}

t.test('REST: fresh answers are marked miss, then hit', async (t) => {
  const { app, upstream } = await seeded(t)
  const miss = await get(app, '/v1/tasks/1')
  t.equal(miss.headers['x-cache'], 'miss')
  t.equal(miss.headers.warning, undefined)
  const hit = await get(app, '/v1/tasks/1')
  t.equal(hit.headers['x-cache'], 'hit')
  t.equal(hit.headers.warning, undefined)
  t.equal(upstream.calls.length, 1)
})

t.test('REST: upstream fails, an expired task inside the stale window is served stale with Age and Warning', async (t) => {
  const { app, upstream, clock } = await seeded(t)
  t.equal((await get(app, '/v1/tasks/1')).statusCode, 200)
  clock.advance(2_000 + 30_000)
  upstream.tasks.get('1')!.progress = '90%'
  upstream.script({ kind: 'status', status: 500 })
  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 200)
  t.equal(res.json().progress, '40%', 'the cached task')
  t.equal(res.headers['x-cache'], 'stale')
  t.equal(res.headers.age, '32')
  t.equal(res.headers.warning, '110 - "Response is Stale"')
  t.equal(upstream.calls.length, 2, 'upstream was tried first')

  const fresh = await get(app, '/v1/tasks/1')
  t.equal(fresh.headers['x-cache'], 'miss', 'upstream is back: a fresh answer')
  t.equal(fresh.json().progress, '90%')
  t.equal(fresh.headers.warning, undefined)
})

t.test('REST: every kind of upstream failure falls back to stale', async (t) => {
  const { app, upstream, clock } = await seeded(t, { upstream: { timeoutMs: 200 } })
  const faults = [
    { kind: 'status', status: 502 }, { kind: 'status', status: 502 }, { kind: 'status', status: 502 },
    { kind: 'hang' },
    { kind: 'raw', body: '<html></html>', contentType: 'text/html' },
    { kind: 'json', body: { error: 'not a list' } },
    { kind: 'json', body: [{ id: '1', status: 42 }] }
  ] as const
  t.equal((await get(app, '/v1/tasks/1')).statusCode, 200)
  clock.advance(5_000)
  let n = 0
  for (const fault of [faults.slice(0, 3), [faults[3]], [faults[4]], [faults[5]], [faults[6]]]) {
    upstream.script(...fault)
    const res = await get(app, '/v1/tasks/1')
    t.equal(res.statusCode, 200, `after ${fault[0]!.kind} ${n++}`)
    t.equal(res.headers['x-cache'], 'stale')
  }
})

t.test('REST: a stale task in a multi-id request marks the whole response stale', async (t) => {
  const { app, upstream, clock } = await seeded(t)
  upstream.add({ id: '3', status: 'SUCCESS' })
  t.equal((await get(app, '/v1/tasks?ids=1,3')).statusCode, 200)
  clock.advance(3_000)
  upstream.script({ kind: 'reset' }, { kind: 'reset' }, { kind: 'reset' })
  const res = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { ids: ['3', '1'] } })
  t.equal(res.statusCode, 200)
  t.same(res.json().map((task: { id: string }) => task.id), ['3', '1'])
  t.equal(res.headers['x-cache'], 'stale', '3 is a fresh hit (final), 1 is stale')
  t.equal(res.headers.age, '3')
})

t.test('REST: past the stale window, or for an id never seen, the client gets the error', async (t) => {
  const { app, upstream, clock } = await seeded(t)
  t.equal((await get(app, '/v1/tasks/1')).statusCode, 200)

  upstream.script({ kind: 'status', status: 500 })
  const unseen = await get(app, '/v1/tasks/2')
  t.equal(unseen.statusCode, 502, 'never seen: nothing to fall back on')
  t.equal(unseen.json().code, 'UPSTREAM_ERROR')

  // Expired by exactly CACHE_STALE_MS is still inside the window; one millisecond more is not.
  clock.advance(2_000 + 60_000)
  upstream.script({ kind: 'status', status: 500 })
  t.equal((await get(app, '/v1/tasks/1')).headers['x-cache'], 'stale', 'at the edge of the window')
  clock.advance(1)
  upstream.script({ kind: 'status', status: 500 })
  const expired = await get(app, '/v1/tasks/1')
  t.equal(expired.statusCode, 502, 'past CACHE_STALE_MS the entry is gone')
  t.equal(expired.json().code, 'UPSTREAM_ERROR')
  t.equal(expired.headers['x-cache'], undefined)
})

t.test('REST: an id remembered as not found is never served stale', async (t) => {
  const { app, upstream, clock } = await seeded(t)
  t.equal((await get(app, '/v1/tasks/404')).statusCode, 404)
  clock.advance(1_500)
  upstream.script({ kind: 'status', status: 500 })
  t.equal((await get(app, '/v1/tasks/404')).statusCode, 502)
})

t.test('REST: with the breaker open, stale tasks are served without calling upstream', async (t) => {
  const { app, upstream, clock } = await seeded(t, { breaker: { threshold: 1, cooldownMs: 10_000 } })
  t.equal((await get(app, '/v1/tasks/1')).statusCode, 200)
  clock.advance(2_500)
  upstream.script({ kind: 'status', status: 500 })
  t.equal((await get(app, '/v1/tasks/2')).statusCode, 502)
  t.equal(app.gateway.breaker.state, 'open')
  const calls = upstream.calls.length

  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-cache'], 'stale')
  t.equal(res.headers.age, '2')
  t.ok(res.headers.warning)
  t.equal(upstream.calls.length, calls, 'upstream was not called')

  const unseen = await get(app, '/v1/tasks/2')
  t.equal(unseen.statusCode, 503, 'never cached: fail fast')
  t.equal(unseen.json().code, 'UPSTREAM_CIRCUIT_OPEN')
  t.equal(unseen.headers['retry-after'], '10')
  t.equal(upstream.calls.length, calls)
})

t.test('GraphQL: stale tasks are served and listed in extensions.stale', async (t) => {
  const { app, upstream, clock } = await seeded(t)
  const first = await gql(app, '{ tasks(ids: ["1", "2"]) { id progress } }')
  t.same(first.json(), { data: { tasks: [{ id: '1', progress: '40%' }, { id: '2', progress: '10%' }] } }, 'fresh: no extensions')
  clock.advance(4_000)
  upstream.script({ kind: 'status', status: 503 }, { kind: 'status', status: 503 }, { kind: 'status', status: 503 })
  const res = await gql(app, '{ tasks(ids: ["1", "2", "9"]) { id progress } }')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(body.data, { tasks: [{ id: '1', progress: '40%' }, { id: '2', progress: '10%' }, null] })
  t.same(body.extensions, { stale: [{ id: '1', ageMs: 4_000 }, { id: '2', ageMs: 4_000 }] })
  t.equal(body.errors.length, 1, 'the never-seen id gets the error')
  t.strictSame([body.errors[0].path, body.errors[0].extensions], [['tasks', 2], { code: 'UPSTREAM_ERROR' }], 'the index in the path is a number')
  t.equal(upstream.calls.length, 4)

  const fresh = await gql(app, '{ task(id: "1") { id } }')
  t.same(fresh.json(), { data: { task: { id: '1' } } }, 'once upstream is back, no stale marks')
})

t.test('GraphQL: with the breaker open, stale answers come with no upstream call', async (t) => {
  const { app, upstream, clock } = await seeded(t, { breaker: { threshold: 1 } })
  await gql(app, '{ task(id: "1") { id } }')
  clock.advance(10_000)
  upstream.script({ kind: 'status', status: 500 })
  await gql(app, '{ task(id: "2") { id } }')
  t.equal(app.gateway.breaker.state, 'open')
  const calls = upstream.calls.length
  const res = await gql(app, '{ task(id: "1") { id progress } }')
  t.same(res.json(), { data: { task: { id: '1', progress: '40%' } }, extensions: { stale: [{ id: '1', ageMs: 10_000 }] } })
  t.equal(upstream.calls.length, calls)
})

t.test('drop-in routes serve stale the same way', async (t) => {
  const { app, upstream, clock } = await seeded(t)
  t.equal((await get(app, '/mj/task/1/fetch')).headers['x-cache'], 'miss')
  clock.advance(3_000)
  upstream.script({ kind: 'status', status: 500 })
  const res = await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: ['1'] } })
  t.equal(res.statusCode, 200)
  t.same(res.json().map((task: { id: string }) => task.id), ['1'])
  t.equal(res.headers['x-cache'], 'stale')
  t.equal(res.headers.age, '3')
})

t.test('REST: a refusal is never served stale: 401, 403 and other 4xx reach the client in either mode; 429 is a failure and is', async (t) => {
  const tenant = 'sk-tenant-cometapi-0000000001'
  const modes = [
    { name: 'key', options: {}, headers: {}, answers: { 401: [502, 'UPSTREAM_KEY_REJECTED'], 403: [502, 'UPSTREAM_KEY_REJECTED'], 404: [502, 'UPSTREAM_ERROR'] } },
    {
      name: 'pass-through',
      options: { upstream: { auth: 'passthrough' as const, key: undefined } },
      headers: { authorization: `Bearer ${tenant}` },
      answers: { 401: [401, 'UPSTREAM_UNAUTHORIZED'], 403: [403, 'UPSTREAM_FORBIDDEN'], 404: [502, 'UPSTREAM_ERROR'] }
    }
  ]
  for (const mode of modes) {
    const { app, upstream, clock } = await seeded(t, mode.options)
    const read = () => app.inject({ url: '/v1/tasks/1', headers: mode.headers })
    t.equal((await read()).statusCode, 200)
    for (const [status, [answer, code]] of Object.entries(mode.answers)) {
      clock.advance(5_000)
      upstream.script({ kind: 'status', status: Number(status) })
      const res = await read()
      t.equal(res.statusCode, answer, `${mode.name}: upstream ${status} is a ${answer}, not the stale copy`)
      t.equal(res.json().code, code)
      t.equal(res.headers['x-cache'], undefined)
    }
    upstream.script({ kind: 'status', status: 429 }, { kind: 'status', status: 429 }, { kind: 'status', status: 429 })
    const limited = await read()
    t.equal(limited.statusCode, 200, `${mode.name}: a 429 is a failure: stale`)
    t.equal(limited.headers['x-cache'], 'stale')
    t.equal(limited.json().progress, '40%')
  }
})

t.test('GraphQL: a revoked pass-through key is an error, not the stale copy', async (t) => {
  const { app, upstream, clock } = await seeded(t, { upstream: { auth: 'passthrough', key: undefined } })
  const ask = () => app.inject({ method: 'POST', url: '/graphql', headers: { authorization: 'Bearer sk-revoked-0000000000000001' }, payload: { query: '{ tasks(ids: ["1"]) { id progress } }' } })
  t.strictSame((await ask()).json(), { data: { tasks: [{ id: '1', progress: '40%' }] } })
  clock.advance(5_000)
  upstream.script({ kind: 'status', status: 401 })
  const res = await ask()
  t.strictSame(res.json().data, { tasks: [null] })
  t.equal(res.json().extensions, undefined, 'nothing served stale')
  t.strictSame(res.json().errors.map((e: { extensions: { code: string } }) => e.extensions.code), ['UPSTREAM_UNAUTHORIZED'])
})
