import t, { type Test } from 'tap'
import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { setup, until, TEST_KEY } from '../helpers/gateway.js'

/**
 * One test per upstream fault, each against the fake upstream over real
 * HTTP. Each asserts what the client sees, how many upstream calls were made
 * (retries included), the backoff waits, and that the gateway answers
 * correctly once upstream behaves again.
 */

const BAD_BODY_LOG = 'upstream sent an unusable list-by-condition body'

/** Log lines as parsed JSON, from a pino logger writing to memory. */
function captureLogs (): { logger: { level: string, stream: { write (line: string): void } }, lines: string[], entries: () => Array<Record<string, any>> } {
  const lines: string[] = []
  return {
    logger: { level: 'trace', stream: { write (line: string) { lines.push(line) } } },
    lines,
    entries: () => lines.map((l) => JSON.parse(l))
  }
}

/** `random: 0.5` makes full-jitter backoff deterministic: half of base * 2^attempt. */
async function gateway (t: Test, options: Parameters<typeof setup>[1] = {}) {
  const logs = captureLogs()
  const gw = await setup(t, options, { random: () => 0.5, logger: logs.logger })
  return { ...gw, logs }
}

const get = (app: FastifyInstance, url: string) => app.inject({ method: 'GET', url })

function badBodyLogs (logs: ReturnType<typeof captureLogs>): Array<Record<string, any>> {
  return logs.entries().filter((e) => e.msg === BAD_BODY_LOG)
}

/** The follow-up every fault test ends with: upstream is healthy again and the answer is right. */
async function answersAfterwards (t: Test, app: FastifyInstance, id: string, callsBefore: number, calls: () => number): Promise<void> {
  const res = await get(app, `/v1/tasks/${id}`)
  t.equal(res.statusCode, 200, 'the gateway answers correctly afterwards')
  t.equal(res.json().id, id, 'with the right task')
  t.equal(calls(), callsBefore + 1, 'after one more upstream call')
}

t.test('500: 502 UPSTREAM_ERROR after a single call, never retried', async (t) => {
  const { app, upstream, sleeps } = await gateway(t)
  upstream.add({ id: '1' })
  upstream.script({ kind: 'status', status: 500 })
  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 502)
  t.equal(res.json().code, 'UPSTREAM_ERROR')
  t.match(res.json().message, /HTTP 500: scripted failure/)
  t.equal(upstream.calls.length, 1, 'a 500 is not one of the retried statuses')
  t.same(sleeps, [])
  await answersAfterwards(t, app, '1', 1, () => upstream.calls.length)
})

t.test('4xx other than 429: never retried; a refused gateway key is named as such', async (t) => {
  const { app, upstream, sleeps } = await gateway(t)
  upstream.add({ id: '1' })
  const codes = { 400: 'UPSTREAM_ERROR', 401: 'UPSTREAM_KEY_REJECTED', 403: 'UPSTREAM_KEY_REJECTED', 404: 'UPSTREAM_ERROR' }
  for (const [status, code] of Object.entries(codes)) {
    upstream.script({ kind: 'status', status: Number(status) })
    const res = await get(app, '/v1/tasks/1')
    t.equal(res.statusCode, 502, `HTTP ${status} → 502`)
    t.equal(res.json().code, code, `HTTP ${status} → ${code}`)
  }
  t.equal(upstream.calls.length, 4, 'one call per lookup')
  t.same(sleeps, [])
  t.equal(app.gateway.breaker.state, 'closed', '4xx answers do not count against availability')
  await answersAfterwards(t, app, '1', 4, () => upstream.calls.length)
})

t.test('503 then success: retried once with jittered backoff, the client sees 200', async (t) => {
  const { app, upstream, sleeps } = await gateway(t)
  upstream.add({ id: '1', status: 'SUCCESS' })
  upstream.script({ kind: 'status', status: 503 })
  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 200)
  t.equal(res.json().id, '1')
  t.equal(res.headers['x-cache'], 'miss')
  t.equal(upstream.calls.length, 2)
  t.same(sleeps, [50], 'full jitter: random 0.5 × base 100 ms × 2^0')
  // SUCCESS is final, so the follow-up is a cache hit; ask for a fresh id instead.
  upstream.add({ id: '2' })
  await answersAfterwards(t, app, '2', 2, () => upstream.calls.length)
})

t.test('502, 503 and 504 until retries run out: UPSTREAM_RETRIES + 1 calls, exponential backoff', async (t) => {
  const { app, upstream, sleeps } = await gateway(t, { upstream: { retries: 3 } })
  upstream.add({ id: '1' })
  upstream.script({ kind: 'status', status: 502 }, { kind: 'status', status: 503 }, { kind: 'status', status: 504 }, { kind: 'status', status: 502 })
  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 502)
  t.equal(res.json().code, 'UPSTREAM_ERROR')
  t.match(res.json().message, /HTTP 502/, 'the last attempt is reported')
  t.equal(upstream.calls.length, 4)
  t.same(sleeps, [50, 100, 200])
  await answersAfterwards(t, app, '1', 4, () => upstream.calls.length)
})

t.test('429 with Retry-After: waited out (up to the cap), then retried', async (t) => {
  const { app, upstream, sleeps } = await gateway(t)
  upstream.add({ id: '1' })
  upstream.script({ kind: 'status', status: 429, headers: { 'retry-after': '2' } })
  const ok = await get(app, '/v1/tasks/1')
  t.equal(ok.statusCode, 200)
  t.equal(upstream.calls.length, 2)
  t.same(sleeps, [2000], 'Retry-After replaces the jittered backoff')

  await t.test('past the cap: not waited out, the client gets 503 with the Retry-After', async (t) => {
    upstream.script({ kind: 'status', status: 429, headers: { 'retry-after': '120' } })
    const res = await get(app, '/v1/tasks/2')
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'UPSTREAM_RATE_LIMITED')
    t.equal(res.headers['retry-after'], '120')
    t.equal(upstream.calls.length, 3, 'no retry')
    t.same(sleeps, [2000])
  })

  await t.test('every attempt rate limited: 503 after UPSTREAM_RETRIES + 1 calls', async (t) => {
    const rateLimited = { kind: 'status', status: 429, body: '{"description":"slow down"}' } as const
    upstream.script(rateLimited, rateLimited, rateLimited)
    const res = await get(app, '/v1/tasks/3')
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'UPSTREAM_RATE_LIMITED')
    t.match(res.json().message, /slow down/)
    t.equal(upstream.calls.length, 6)
    t.same(sleeps, [2000, 50, 100])
  })

  upstream.add({ id: '4' })
  await answersAfterwards(t, app, '4', 6, () => upstream.calls.length)
})

t.test('503 with Retry-After is honoured too', async (t) => {
  const { app, upstream, sleeps } = await gateway(t)
  upstream.add({ id: '1' })
  upstream.script({ kind: 'status', status: 503, headers: { 'retry-after': '1' } })
  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 200)
  t.equal(upstream.calls.length, 2)
  t.same(sleeps, [1000])
})

t.test('hang past the timeout: 504 UPSTREAM_TIMEOUT at the deadline, not retried', async (t) => {
  const { app, upstream, sleeps } = await gateway(t, { upstream: { timeoutMs: 200 } })
  upstream.add({ id: '1' })
  upstream.script({ kind: 'hang' })
  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'UPSTREAM_TIMEOUT')
  t.equal(res.json().message, 'Upstream did not answer within 200 ms')
  t.equal(upstream.calls.length, 1, 'the deadline covers retries: nothing is left for another attempt')
  t.same(sleeps, [])
  t.same(app.gateway.batcher.stats, { lanes: 0, queued: 0, inFlight: 0, activeCalls: 0 }, 'nothing left waiting')
  await answersAfterwards(t, app, '1', 1, () => upstream.calls.length)
})

t.test('hang after a retryable failure: the one deadline still holds', async (t) => {
  const { app, upstream, sleeps } = await gateway(t, { upstream: { timeoutMs: 200 } })
  upstream.add({ id: '1' })
  upstream.script({ kind: 'status', status: 503 }, { kind: 'hang' })
  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'UPSTREAM_TIMEOUT')
  t.equal(upstream.calls.length, 2)
  t.same(sleeps, [50])
  await answersAfterwards(t, app, '1', 2, () => upstream.calls.length)
})

t.test('reset connection: retried; every attempt reset gives 502 UPSTREAM_ERROR', async (t) => {
  const { app, upstream, sleeps } = await gateway(t)
  upstream.add({ id: '1' }, { id: '2' })
  upstream.script({ kind: 'reset' })
  const recovered = await get(app, '/v1/tasks/1')
  t.equal(recovered.statusCode, 200, 'one reset, then an answer')
  t.equal(upstream.calls.length, 2)
  t.same(sleeps, [50])

  upstream.script({ kind: 'reset' }, { kind: 'reset' }, { kind: 'reset' })
  const res = await get(app, '/v1/tasks/2')
  t.equal(res.statusCode, 502)
  t.equal(res.json().code, 'UPSTREAM_ERROR')
  t.match(res.json().message, /connection failed/)
  t.equal(upstream.calls.length, 5, 'UPSTREAM_RETRIES (2) + 1 attempts')
  t.same(sleeps, [50, 50, 100])
  await answersAfterwards(t, app, '2', 5, () => upstream.calls.length)
})

/** The bad-body faults share one shape: 502 UPSTREAM_BAD_RESPONSE, one call, one log line, nothing cached. */
async function badBody (t: Test, options: Parameters<typeof setup>[1], script: Parameters<Awaited<ReturnType<typeof setup>>['upstream']['script']>[0], reason: RegExp): Promise<void> {
  const { app, upstream, sleeps, logs } = await gateway(t, options)
  upstream.add({ id: '1' }, { id: '2' })
  upstream.script(script)
  // Two requests that share one upstream call: the bad body is still logged once.
  const [res, other] = await Promise.all([get(app, '/v1/tasks/1'), get(app, '/v1/tasks/2')])
  for (const r of [res, other]) {
    t.equal(r.statusCode, 502)
    t.equal(r.json().code, 'UPSTREAM_BAD_RESPONSE')
    t.match(r.json().message, reason)
  }
  t.equal(upstream.calls.length, 1, 'a bad body is not retried')
  t.same(sleeps, [])
  const logged = badBodyLogs(logs)
  t.equal(logged.length, 1, 'logged once')
  t.match(logged[0], { level: 40, component: 'upstream', reason })
  t.notOk(logs.lines.some((l) => l.includes(TEST_KEY)), 'the upstream key is in no log line')
  t.equal(app.gateway.cache.size, 0, 'nothing was cached')
  await answersAfterwards(t, app, '1', 1, () => upstream.calls.length)
}

t.test('malformed JSON: 502 UPSTREAM_BAD_RESPONSE', (t) =>
  badBody(t, {}, { kind: 'raw', body: '[{"id": "1", "status": ' }, /body is not JSON/))

t.test('HTML instead of JSON: 502 UPSTREAM_BAD_RESPONSE', (t) =>
  badBody(t, {}, { kind: 'raw', body: '<html><body>502 Bad Gateway</body></html>', contentType: 'text/html' }, /body is not JSON/))

t.test('object instead of array: 502 UPSTREAM_BAD_RESPONSE', (t) =>
  badBody(t, {}, { kind: 'json', body: { data: [{ id: '1' }, { id: '2' }] } }, /expected a JSON array, got object/))

t.test('an entry without a string id: 502 UPSTREAM_BAD_RESPONSE', (t) =>
  badBody(t, {}, { kind: 'json', body: [{ id: '1' }, { id: 2 }] }, /entry 1 has no string id/))

t.test('oversized body: 502 UPSTREAM_BAD_RESPONSE', (t) =>
  badBody(t, { upstream: { maxBodyBytes: 2048 } }, { kind: 'json', body: [{ id: '1', prompt: 'x'.repeat(4096) }, { id: '2' }] }, /exceeds the 2048-byte limit/))

t.test('wrong field types: only that task fails, the rest of the batch is served', async (t) => {
  const { app, upstream, logs } = await gateway(t)
  upstream.add({ id: '1' }, { id: '2' })
  upstream.script({ kind: 'json', body: [{ id: '1', status: 7 }, { id: '2', status: 'SUCCESS' }] })
  const [bad, good] = await Promise.all([get(app, '/v1/tasks/1'), get(app, '/v1/tasks/2')])
  t.equal(bad.statusCode, 502)
  t.equal(bad.json().code, 'UPSTREAM_BAD_RESPONSE')
  t.match(bad.json().message, /task 1: field status is number, expected string/)
  t.equal(good.statusCode, 200)
  t.equal(good.json().status, 'SUCCESS')
  t.equal(upstream.calls.length, 1)
  t.equal(app.gateway.cache.get('shared', '1'), undefined, 'the malformed task was not cached')
  const logged = logs.entries().filter((e) => e.component === 'upstream' && e.level === 40)
  t.equal(logged.length, 1, 'logged once')
  t.match(logged[0], { invalid: 1, reasons: ['task 1: field status is number, expected string'] })
  await answersAfterwards(t, app, '1', 1, () => upstream.calls.length)
})

t.test('a task nested 5000 deep: that id is 502 UPSTREAM_BAD_RESPONSE, the rest of the batch is served', async (t) => {
  const { app, upstream, logs } = await gateway(t)
  upstream.add({ id: '1' }, { id: '2' })
  const deep = `{"id":"1","status":"IN_PROGRESS","properties":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`
  const body = `[${deep},{"id":"2","status":"SUCCESS"}]`
  t.ok(body.length < 40_000, `a ${body.length}-byte body`)
  upstream.script({ kind: 'raw', body })
  const [bad, good] = await Promise.all([get(app, '/v1/tasks/1'), get(app, '/v1/tasks/2')])
  t.equal(bad.statusCode, 502)
  t.strictSame(bad.json(), { statusCode: 502, code: 'UPSTREAM_BAD_RESPONSE', error: 'Bad Gateway', message: 'Upstream sent an unusable response: task 1: nested deeper than 32 levels' })
  t.equal(good.statusCode, 200)
  t.equal(good.json().status, 'SUCCESS')
  t.equal(upstream.calls.length, 1)
  t.equal(app.gateway.cache.get('shared', '1'), undefined, 'the deep task was not cached')
  t.match(logs.entries().filter((e) => e.component === 'upstream' && e.level === 40), [{ invalid: 1 }], 'logged once')

  upstream.script({ kind: 'raw', body: `[${deep},{"id":"3","status":"SUCCESS"}]` })
  upstream.add({ id: '3', status: 'SUCCESS' })
  const gql = await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ tasks(ids: ["1", "3"]) { id properties } }' } })
  t.equal(gql.statusCode, 200)
  t.strictSame(gql.json().data, { tasks: [null, { id: '3', properties: null }] })
  t.strictSame(gql.json().errors.map((e: { extensions: { code: string } }) => e.extensions.code), ['UPSTREAM_BAD_RESPONSE'])
  await answersAfterwards(t, app, '1', 2, () => upstream.calls.length)
})

t.test('unrequested ids: ignored and never cached', async (t) => {
  const { app, upstream, sleeps, logs } = await gateway(t)
  upstream.add({ id: '1' })
  upstream.script({ kind: 'json', body: [{ id: '666', status: 'SUCCESS', prompt: 'not yours' }, { id: '1', status: 'IN_PROGRESS' }] })
  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 200)
  t.equal(res.json().id, '1', 'the requested task, not the stray one')
  t.equal(upstream.calls.length, 1)
  t.same(sleeps, [])
  t.equal(app.gateway.cache.get('shared', '666'), undefined)
  t.match(logs.entries().filter((e) => e.component === 'upstream' && e.level === 40), [{ unrequested: 1 }], 'logged once')

  const stray = await get(app, '/v1/tasks/666')
  t.equal(upstream.calls.length, 2, 'a lookup for the unrequested id goes upstream: it was not cached')
  t.same(upstream.calls[1]!.ids, ['666'])
  t.equal(stray.statusCode, 404, 'and upstream does not know it')
  t.equal(stray.json().code, 'GW_ERR_TASK_NOT_FOUND')
})

t.test('duplicate entries: the first wins, one result per id', async (t) => {
  const { app, upstream, sleeps, logs } = await gateway(t)
  upstream.add({ id: '1' }, { id: '2' })
  upstream.script({
    kind: 'json',
    body: [{ id: '1', status: 'SUCCESS' }, { id: '2', status: 'IN_PROGRESS' }, { id: '1', status: 'FAILURE' }, { id: '1', status: 9 }]
  })
  const res = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { ids: ['1', '2', '1'] } })
  t.equal(res.statusCode, 200)
  t.same(res.json().map((task: { id: string, status: string }) => [task.id, task.status]), [['1', 'SUCCESS'], ['2', 'IN_PROGRESS'], ['1', 'SUCCESS']],
    'request order, the first entry for 1 (a repeated request id shares it)')
  t.equal(upstream.calls.length, 1)
  t.same(upstream.calls[0]!.ids, ['1', '2'], 'a repeated id is asked for once')
  t.same(sleeps, [])
  t.match(logs.entries().filter((e) => e.component === 'upstream' && e.level === 40), [{ duplicates: 2 }])
  t.equal(app.gateway.cache.get('shared', '1')?.stored?.task.status, 'SUCCESS', 'the cache holds the first entry')
  upstream.add({ id: '3' })
  await answersAfterwards(t, app, '3', 1, () => upstream.calls.length)
})

t.test('GraphQL reports an upstream fault per id in errors[].extensions.code', async (t) => {
  const { app, upstream } = await gateway(t)
  upstream.add({ id: '1' })
  upstream.script({ kind: 'raw', body: '<html></html>', contentType: 'text/html' })
  const res = await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ tasks(ids: ["1"]) { id } }' } })
  t.equal(res.statusCode, 200)
  t.same(res.json().data, { tasks: [null] })
  t.equal(res.json().errors[0].extensions.code, 'UPSTREAM_BAD_RESPONSE')
  t.same(res.json().errors[0].path, ['tasks', 0])
  const ok = await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ tasks(ids: ["1"]) { id } }' } })
  t.same(ok.json(), { data: { tasks: [{ id: '1' }] } })
})

t.test('clients that go away while their batch is in flight leak nothing', async (t) => {
  const { app, upstream } = await gateway(t)
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

  const ids = upstream.add(...Array.from({ length: 30 }, (_, i) => ({ id: `7${i}` })))
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  upstream.hold()
  const aborts = ids.map(() => new AbortController())
  const requests = ids.map((id, i) => fetch(`${base}/v1/tasks/${id}`, { signal: aborts[i]!.signal }).then(
    () => 'answered',
    (err: Error) => err.name
  ))
  await until(() => app.gateway.batcher.stats.inFlight === ids.length)
  t.ok(upstream.calls.length >= 1)
  for (const a of aborts) a.abort()
  t.same(await Promise.all(requests), ids.map(() => 'AbortError'), 'every client gave up')
  upstream.release()
  await until(() => app.gateway.batcher.stats.lanes === 0)
  t.same(app.gateway.batcher.stats, { lanes: 0, queued: 0, inFlight: 0, activeCalls: 0 }, 'no waiter, lane or call is left behind')
  await delay(20)
  t.same(unhandled, [], 'no unhandled rejection')

  const res = await fetch(`${base}/v1/tasks/${ids[0]!}`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-cache'), 'hit', 'the abandoned results went to the bounded cache, nowhere else')
})

t.test('load shedding: past a bound, requests get 503 GW_ERR_OVERLOADED at once; /healthz still answers', async (t) => {
  // A 1-byte heap bound is past as soon as under-pressure takes its first sample. The
  // event-loop check is off so that a slow machine cannot make it the reason instead.
  const { app, upstream } = await gateway(t, { load: { maxHeapUsedBytes: 1, maxEventLoopDelayMs: 0, sampleIntervalMs: 100 } })
  upstream.add({ id: '1' })
  for (let i = 0; i < 500 && !app.isUnderPressure(); i++) await delay(10)
  t.ok(app.isUnderPressure(), 'under pressure')

  const res = await get(app, '/v1/tasks/1')
  t.equal(res.statusCode, 503)
  t.same(res.json(), { statusCode: 503, code: 'GW_ERR_OVERLOADED', error: 'Service Unavailable', message: 'The gateway is overloaded: heapUsedBytes is past its bound' })
  t.equal(res.headers['retry-after'], '5')
  const gql = await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ task(id: "1") { id } }' } })
  t.equal(gql.statusCode, 503, 'GraphQL is shed the same way')
  t.equal(upstream.calls.length, 0, 'a shed request costs upstream nothing')
  t.equal((await get(app, '/healthz')).statusCode, 200, 'liveness is exempt')
  t.equal((await get(app, '/readyz')).statusCode, 503, 'readiness is shed: a balancer should route elsewhere')
})

t.test('load shedding stays out of the way below its bounds', async (t) => {
  const { app, upstream } = await gateway(t, { load: { sampleIntervalMs: 100 } })
  upstream.add({ id: '1' })
  await delay(250)
  t.notOk(app.isUnderPressure())
  t.equal((await get(app, '/v1/tasks/1')).statusCode, 200)
})

t.test('in-flight bookkeeping is bounded: past BATCH_MAX_QUEUED, lookups get 503 GW_ERR_OVERLOADED', async (t) => {
  const { app, upstream } = await gateway(t, { batch: { maxQueued: 5 } })
  upstream.add(...Array.from({ length: 8 }, (_, i) => ({ id: `${i}` })))
  upstream.hold()
  const first = app.inject({ method: 'POST', url: '/v1/tasks', payload: { ids: ['0', '1', '2', '3', '4'] } })
  await upstream.waitForCalls(1)
  const over = await get(app, '/v1/tasks/5')
  t.equal(over.statusCode, 503)
  t.equal(over.json().code, 'GW_ERR_OVERLOADED')
  t.match(over.json().message, /5 task lookups are already waiting on upstream/)
  t.same(app.gateway.batcher.stats, { lanes: 1, queued: 0, inFlight: 5, activeCalls: 1 }, 'the refused lookup left nothing behind')
  upstream.release()
  t.equal((await first).statusCode, 200)
  t.same(app.gateway.batcher.stats, { lanes: 0, queued: 0, inFlight: 0, activeCalls: 0 })
  await answersAfterwards(t, app, '5', 1, () => upstream.calls.length)
})
