import t from 'tap'
import { setup, ManualClock } from '../helpers/gateway.js'

t.test('GET /v1/tasks returns tasks in request order with null for unknown ids', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '2', status: 'SUCCESS', progress: '100%' }, { id: '1', status: '', progress: '', submitTime: 0, buttons: null, properties: null })
  const res = await app.inject({ method: 'GET', url: '/v1/tasks?ids=1,nope,2' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-cache'], 'miss')
  const body = res.json()
  t.same(body.map((task: { id: string } | null) => task?.id ?? null), ['1', null, '2'])
  t.same(body[0], { id: '1', status: '', progress: '', action: 'IMAGINE', submitTime: 0, buttons: null, properties: null }, 'empty and null upstream fields pass through unchanged')
})

t.test('POST /v1/tasks takes a JSON body of ids and answers like GET', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '7' })
  const res = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { ids: ['7', '8', '7'] } })
  t.equal(res.statusCode, 200)
  t.same(res.json().map((task: { id: string } | null) => task?.id ?? null), ['7', null, '7'])
  t.same(upstream.calls.map((c) => c.ids), [['7', '8']])
})

t.test('GET /v1/tasks/:id returns the task, or a JSON 404 naming it', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '5', prompt: 'a fox' })
  const found = await app.inject({ method: 'GET', url: '/v1/tasks/5' })
  t.equal(found.json().prompt, 'a fox')
  const missing = await app.inject({ method: 'GET', url: '/v1/tasks/6' })
  t.equal(missing.statusCode, 404)
  t.same(missing.json(), { statusCode: 404, code: 'GW_ERR_TASK_NOT_FOUND', error: 'Not Found', message: 'Task 6 not found' })
})

t.test('serves repeat lookups from the cache until the TTL passes', async (t) => {
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, { cache: { ttlMs: 2000 } }, { now: clock.now })
  upstream.add({ id: '1' })
  t.equal((await app.inject('/v1/tasks/1')).headers['x-cache'], 'miss')
  clock.advance(1999)
  t.equal((await app.inject('/v1/tasks/1')).headers['x-cache'], 'hit')
  t.equal(upstream.calls.length, 1, 'the hit made no upstream call')
  clock.advance(1)
  t.equal((await app.inject('/v1/tasks/1')).headers['x-cache'], 'miss')
  t.equal(upstream.calls.length, 2, 'an expired entry is fetched again')
})

t.test('keeps a final task for the final TTL and an unknown id only briefly', async (t) => {
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, { cache: { ttlMs: 2000, finalTtlMs: 60_000, notFoundTtlMs: 500 } }, { now: clock.now })
  upstream.add({ id: 'done', status: 'SUCCESS' })
  await app.inject('/v1/tasks?ids=done,unknown')
  clock.advance(499)
  await app.inject('/v1/tasks?ids=done,unknown')
  t.equal(upstream.calls.length, 1, 'both answered from cache within 500 ms')
  clock.advance(1)
  await app.inject('/v1/tasks?ids=done,unknown')
  t.same(upstream.calls.map((c) => c.ids), [['done', 'unknown'], ['unknown']], 'the unknown id is asked again, the final task is not')
  clock.advance(59_500)
  await app.inject('/v1/tasks/done')
  t.same(upstream.calls.at(-1)!.ids, ['done'], 'the final task expires after the final TTL')
})

t.test('with CACHE_TTL_MS=0 every lookup goes upstream', async (t) => {
  const { app, upstream } = await setup(t, { cache: { ttlMs: 0 } })
  upstream.add({ id: '1', status: 'SUCCESS' })
  await app.inject('/v1/tasks/1')
  await app.inject('/v1/tasks/1')
  t.equal(upstream.calls.length, 2)
})

t.test('maps upstream failures to 502 and timeouts to 504 with coded JSON errors', async (t) => {
  const { app, upstream } = await setup(t, { upstream: { timeoutMs: 300, retries: 0 } })
  upstream.add({ id: '1' })
  upstream.script({ kind: 'status', status: 500, body: '{"description":"boom","type":"upstream_error","code":4}' })
  const failed = await app.inject('/v1/tasks/1')
  t.equal(failed.statusCode, 502)
  t.same(failed.json(), { statusCode: 502, code: 'UPSTREAM_ERROR', error: 'Bad Gateway', message: 'Upstream call failed: HTTP 500: boom' })

  upstream.script({ kind: 'hang' })
  const timedOut = await app.inject('/v1/tasks?ids=1')
  t.equal(timedOut.statusCode, 504)
  t.same(timedOut.json(), { statusCode: 504, code: 'UPSTREAM_TIMEOUT', error: 'Gateway Timeout', message: 'Upstream did not answer within 300 ms' })
  t.equal(upstream.calls.length, 2)

  const after = await app.inject('/v1/tasks/1')
  t.equal(after.statusCode, 200, 'the gateway answers normally afterwards')
})

t.test('answers bad input with a 400 that names the problem', async (t) => {
  const { app, upstream } = await setup(t, { limits: { maxIdsPerRequest: 3 } })
  const cases: Array<[string, string, unknown, RegExp]> = [
    ['GET', '/v1/tasks?ids=1,,2', undefined, /ids\[1\] is empty/],
    ['GET', '/v1/tasks?ids=1&ids=', undefined, /ids\[1\] is empty/],
    ['GET', '/v1/tasks?ids=1,2,3,4', undefined, /Too many ids: 4 given, at most 3/],
    ['GET', '/v1/tasks?ids=1&ids=2,3&ids=4', undefined, /Too many ids: 4 given, at most 3/],
    ['GET', '/v1/tasks?ids=1&ids=a%20b', undefined, /ids\[1\] has characters outside/],
    ['GET', '/v1/tasks?ids=1,a%20b', undefined, /ids\[1\] has characters outside/],
    ['POST', '/v1/tasks', { ids: 'x' }, /body\/ids must be array/],
    ['POST', '/v1/tasks', { ids: ['1', 2] }, /ids\[1\] must be a string/],
    ['POST', '/v1/tasks', {}, /body must have required property 'ids'/],
    ['GET', `/v1/tasks/${'9'.repeat(65)}`, undefined, /id is longer than 64 characters/]
  ]
  for (const [method, url, payload, message] of cases) {
    const res = await app.inject({ method: method as 'GET', url, payload: payload as object })
    t.equal(res.statusCode, 400, `${method} ${url} → 400`)
    t.match(res.json(), { statusCode: 400, error: 'Bad Request', message }, `${method} ${url} names the problem`)
  }
  const badJson = await app.inject({ method: 'POST', url: '/v1/tasks', headers: { 'content-type': 'application/json' }, payload: '{"ids": [' })
  t.equal(badJson.statusCode, 400)
  t.equal(badJson.json().code, 'GW_ERR_BAD_REQUEST')
  t.equal(upstream.calls.length, 0, 'no bad request reached upstream')
})

t.test('GET /v1/tasks takes ids as a comma-separated list, as a repeated key, or both', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1' }, { id: '2' }, { id: '3' })
  for (const query of ['ids=3,1,2', 'ids=3&ids=1&ids=2', 'ids=3&ids=1,2']) {
    const res = await app.inject(`/v1/tasks?${query}`)
    t.equal(res.statusCode, 200, query)
    t.strictSame(res.json().map((task: { id: string }) => task.id), ['3', '1', '2'], `${query}: request order`)
  }
  t.strictSame(upstream.calls.map((c) => c.ids), [['3', '1', '2']], 'one lookup, then the cache')
})

t.test('GET /v1/tasks without ids, or with ids= empty, answers [] and asks upstream nothing', async (t) => {
  const { app, upstream } = await setup(t)
  for (const url of ['/v1/tasks', '/v1/tasks?ids=']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, url)
    t.strictSame(res.json(), [], url)
  }
  t.equal(upstream.calls.length, 0)
})

t.test('every /v1/tasks route reads a "" time as null; the drop-in routes still answer upstream\'s row as it came', async (t) => {
  const { app, upstream } = await setup(t)
  const sparse = { id: '41', status: '', progress: '', submitTime: '' as const, startTime: '' as const, finishTime: 0, buttons: null, properties: null, botType: 'MID_JOURNEY' }
  upstream.add(sparse, { id: '42', submitTime: 1_700_000_000_000, startTime: '' as const, finishTime: '' as const })
  const mapped = { ...sparse, action: 'IMAGINE', submitTime: null, startTime: null }

  // REST first, so the drop-in answers below come from the row REST has just served.
  const one = await app.inject('/v1/tasks/41')
  t.equal(one.headers['x-cache'], 'miss')
  t.strictSame(one.json(), mapped, '"" times are null, 0 stays 0, everything else as upstream sent it')
  const list = await app.inject('/v1/tasks?ids=41,42')
  t.strictSame(list.json()[0], mapped)
  t.strictSame([list.json()[1].submitTime, list.json()[1].startTime, list.json()[1].finishTime], [1_700_000_000_000, null, null])
  const posted = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { ids: ['41'] } })
  t.strictSame(posted.json(), [mapped])

  const fetched = await app.inject('/mj/task/41/fetch')
  t.equal(fetched.headers['x-cache'], 'hit', 'the drop-in answer is the cached row REST served')
  t.strictSame(fetched.json(), { ...sparse, action: 'IMAGINE' }, 'the drop-in row keeps its "" times')
  const listed = await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: ['41', '42'] } })
  t.strictSame(listed.json().map((task: Record<string, unknown>) => [task.submitTime, task.startTime, task.finishTime]), [['', '', 0], [1_700_000_000_000, '', '']])
  t.strictSame(upstream.calls.map((c) => c.ids), [['41'], ['42']], 'every answer after the first lookups came from the cache')
})

t.test('a known path asked with a method it does not answer is 405 with Allow; an unknown path stays 404', async (t) => {
  const { app, upstream } = await setup(t)
  const one = await app.inject({ method: 'DELETE', url: '/v1/tasks/1?x=1' })
  t.equal(one.statusCode, 405)
  t.equal(one.headers.allow, 'GET, HEAD')
  t.strictSame(one.json(), {
    statusCode: 405,
    code: 'GW_ERR_METHOD_NOT_ALLOWED',
    error: 'Method Not Allowed',
    message: 'Method DELETE is not allowed on /v1/tasks/1; allowed: GET, HEAD'
  })
  const list = await app.inject({ method: 'PUT', url: '/v1/tasks', payload: { ids: ['1'] } })
  t.equal(list.statusCode, 405)
  t.equal(list.headers.allow, 'GET, HEAD, POST')
  const unknown = await app.inject({ method: 'DELETE', url: '/v1/nothing/1' })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.headers.allow, undefined)
  t.equal(unknown.json().code, 'GW_ERR_ROUTE_NOT_FOUND')
  t.equal(upstream.calls.length, 0)
})

t.test('answers unknown routes with a JSON 404', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject('/v2/nothing?x=1')
  t.same(res.json(), { statusCode: 404, code: 'GW_ERR_ROUTE_NOT_FOUND', error: 'Not Found', message: 'Route GET /v2/nothing not found' })
})

t.test('GET /healthz answers 200 while the process is up', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject('/healthz')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})
