import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { CircuitBreaker, isAvailabilityFailure } from '../../src/upstream/breaker.js'
import { errors, type GatewayError } from '../../src/errors.js'
import { ManualClock, setup, until } from '../helpers/gateway.js'

const fail = (err: Error) => async (): Promise<never> => { throw err }
const ok = async (): Promise<string> => 'ok'
const upstream500 = (): GatewayError => Object.assign(new errors.UpstreamError('HTTP 500: boom'), { upstreamStatus: 500 })

t.test('unit: opens after THRESHOLD consecutive failures, fails fast, half-opens, closes', async (t) => {
  const clock = new ManualClock()
  const breaker = new CircuitBreaker({ threshold: 3, cooldownMs: 10_000, now: clock.now })
  t.equal(breaker.state, 'closed')
  await t.rejects(breaker.run(fail(upstream500())))
  await t.rejects(breaker.run(fail(upstream500())))
  t.equal(await breaker.run(ok), 'ok', 'a success resets the count')
  for (let i = 0; i < 2; i++) await t.rejects(breaker.run(fail(new errors.UpstreamTimeout(10))))
  t.equal(breaker.state, 'closed', 'two in a row: still closed')
  await t.rejects(breaker.run(fail(new errors.UpstreamTimeout(10))), { code: 'UPSTREAM_TIMEOUT' }, 'the failure that opens it is passed on')
  t.equal(breaker.state, 'open')
  t.match(breaker.snapshot, { state: 'open', retryInMs: 10_000, reason: /3 consecutive upstream failures, last: Upstream did not answer within 10 ms/ })

  let called = 0
  clock.advance(4_500)
  await t.rejects(breaker.run(async () => { called++ }), { code: 'UPSTREAM_CIRCUIT_OPEN', statusCode: 503, retryAfter: 6 })
  t.equal(called, 0, 'open: the call is not made')

  clock.advance(5_500)
  t.equal(breaker.state, 'half-open')
  t.equal(await breaker.run(ok), 'ok', 'the probe goes through')
  t.equal(breaker.state, 'closed')
  t.equal(breaker.snapshot.reason, undefined)
})

t.test('unit: half-open lets exactly one probe through; its failure re-opens for a full cool-down', async (t) => {
  const clock = new ManualClock()
  const breaker = new CircuitBreaker({ threshold: 1, cooldownMs: 1_000, now: clock.now })
  await t.rejects(breaker.run(fail(upstream500())))
  clock.advance(1_000)
  let release!: () => void
  const probe = breaker.run(() => new Promise<never>((_resolve, reject) => { release = () => reject(upstream500()) }))
  let calls = 0
  for (let i = 0; i < 3; i++) {
    await t.rejects(breaker.run(async () => { calls++ }), { code: 'UPSTREAM_CIRCUIT_OPEN', retryAfter: 1 }, 'concurrent calls fail fast while the probe is out')
  }
  t.equal(calls, 0)
  release()
  await t.rejects(probe, { code: 'UPSTREAM_ERROR' })
  t.equal(breaker.state, 'open', 'the failed probe re-opened it')
  t.equal(breaker.snapshot.retryInMs, 1_000, 'for a whole cool-down')
  clock.advance(1_000)
  t.equal(await breaker.run(ok), 'ok')
  t.equal(breaker.state, 'closed')
})

t.test('unit: only availability failures count', async (t) => {
  const breaker = new CircuitBreaker({ threshold: 1, cooldownMs: 1_000 })
  const notCounted = [
    Object.assign(new errors.UpstreamError('HTTP 401: bad key'), { upstreamStatus: 401 }),
    Object.assign(new errors.UpstreamError('HTTP 404: nope'), { upstreamStatus: 404 }),
    new errors.Overloaded('queue full'),
    new errors.TaskNotFound('1'),
    new Error('a bug')
  ]
  for (const err of notCounted) {
    t.notOk(isAvailabilityFailure(err), err.message)
    await t.rejects(breaker.run(fail(err)))
  }
  t.equal(breaker.state, 'closed')
  const counted = [
    upstream500(),
    new errors.UpstreamError('connection failed (ECONNRESET)'),
    new errors.UpstreamTimeout(1),
    Object.assign(new errors.UpstreamRateLimited('HTTP 429'), { upstreamStatus: 429 }),
    new errors.UpstreamBadResponse('body is not JSON')
  ]
  for (const err of counted) t.ok(isAvailabilityFailure(err), err.message)
})

t.test('unit: options are validated', async (t) => {
  t.throws(() => new CircuitBreaker({ threshold: 0, cooldownMs: 1 }), TypeError)
  t.throws(() => new CircuitBreaker({ threshold: 1, cooldownMs: -1 }), TypeError)
})

const get = (app: FastifyInstance, url: string) => app.inject({ method: 'GET', url })

t.test('gateway: the breaker opens, fails fast, half-opens and closes; /readyz stays 200 and reports it', async (t) => {
  const clock = new ManualClock()
  const { app, upstream, sleeps } = await setup(t, { breaker: { threshold: 5, cooldownMs: 10_000 } }, { now: clock.now })
  upstream.add(...Array.from({ length: 10 }, (_, i) => ({ id: `${i}` })))
  t.strictSame((await get(app, '/readyz')).json(), { ready: true, breaker: { state: 'closed', retryInMs: 0 } })

  // Five lookups, each failing after its retries: 5 × 3 calls.
  for (let i = 0; i < 5; i++) {
    upstream.script({ kind: 'reset' }, { kind: 'reset' }, { kind: 'reset' })
    const res = await get(app, `/v1/tasks/${i}`)
    t.equal(res.json().code, 'UPSTREAM_ERROR', `lookup ${i} fails`)
  }
  t.equal(upstream.calls.length, 15)
  t.equal(sleeps.length, 10)
  t.equal(app.gateway.breaker.state, 'open')

  // Open: fail fast, no upstream call.
  clock.advance(2_500)
  const fast = await get(app, '/v1/tasks/6')
  t.equal(fast.statusCode, 503)
  t.equal(fast.json().code, 'UPSTREAM_CIRCUIT_OPEN')
  t.match(fast.json().message, /paused by the circuit breaker: 5 consecutive upstream failures, last: Upstream call failed: connection failed/)
  t.equal(fast.headers['retry-after'], '8', 'seconds until the probe')
  t.equal(upstream.calls.length, 15, 'upstream was not called')
  const gql = await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ task(id: "6") { id } }' } })
  t.equal(gql.json().errors[0].extensions.code, 'UPSTREAM_CIRCUIT_OPEN')
  t.equal(upstream.calls.length, 15)

  // An outage is not this instance's fault: every replica sees it, and stale copies are still served.
  const ready = await get(app, '/readyz')
  t.equal(ready.statusCode, 200, 'ready with the breaker open')
  const { breaker, ...rest } = ready.json()
  t.strictSame(rest, { ready: true })
  t.strictSame({ ...breaker, reason: undefined }, { state: 'open', retryInMs: 7_500, reason: undefined })
  t.match(breaker.reason, /^5 consecutive upstream failures, last: Upstream call failed: connection failed \(/, 'the reason, as the breaker has it')

  // Half-open: one probe at a time; the others still fail fast.
  clock.advance(7_500)
  t.equal(app.gateway.breaker.state, 'half-open')
  t.match((await get(app, '/readyz')).json(), { ready: true, breaker: { state: 'half-open', retryInMs: 0 } }, 'ready, so traffic can bring the probe')
  upstream.hold()
  const probe = get(app, '/v1/tasks/7')
  await upstream.waitForCalls(16)
  const concurrent = await get(app, '/v1/tasks/8')
  t.equal(concurrent.statusCode, 503)
  t.equal(concurrent.json().code, 'UPSTREAM_CIRCUIT_OPEN')
  t.equal(concurrent.headers['retry-after'], '1')
  t.equal(upstream.calls.length, 16, 'only the probe reached upstream')
  upstream.release()
  const probed = await probe
  t.equal(probed.statusCode, 200)
  t.equal(probed.json().id, '7')

  // Closed again.
  t.equal(app.gateway.breaker.state, 'closed')
  t.strictSame((await get(app, '/readyz')).json(), { ready: true, breaker: { state: 'closed', retryInMs: 0 } })
  const after = await get(app, '/v1/tasks/8')
  t.equal(after.statusCode, 200)
  t.equal(upstream.calls.length, 17)
})

t.test('gateway: a failed probe re-opens the breaker', async (t) => {
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, { breaker: { threshold: 1, cooldownMs: 5_000 } }, { now: clock.now })
  upstream.add({ id: '1' })
  upstream.script({ kind: 'status', status: 500 })
  t.equal((await get(app, '/v1/tasks/1')).statusCode, 502)
  t.equal(app.gateway.breaker.state, 'open')
  clock.advance(5_000)
  upstream.script({ kind: 'status', status: 500 })
  t.equal((await get(app, '/v1/tasks/1')).json().code, 'UPSTREAM_ERROR', 'the probe went through and failed')
  t.equal(upstream.calls.length, 2)
  t.equal(app.gateway.breaker.state, 'open')
  t.equal((await get(app, '/v1/tasks/1')).json().code, 'UPSTREAM_CIRCUIT_OPEN')
  t.equal(upstream.calls.length, 2)
  clock.advance(5_000)
  t.equal((await get(app, '/v1/tasks/1')).statusCode, 200)
  t.equal(app.gateway.breaker.state, 'closed')
})

t.test('gateway: 4xx answers (e.g. a bad pass-through key) never open the breaker', async (t) => {
  const { app, upstream } = await setup(t, { breaker: { threshold: 2 }, upstream: { auth: 'passthrough', key: undefined } })
  upstream.add({ id: '1' })
  for (let i = 0; i < 5; i++) {
    upstream.script({ kind: 'status', status: 401, body: '{"description":"invalid token","type":"upstream_error","code":4}' })
    const res = await app.inject({ method: 'GET', url: '/v1/tasks/1', headers: { authorization: 'Bearer sk-wrong' } })
    t.equal(res.statusCode, 401, 'the tenant\'s own refusal')
    t.equal(res.json().message, 'Upstream refused your credential: HTTP 401: invalid token')
  }
  t.equal(app.gateway.breaker.state, 'closed')
  const res = await app.inject({ method: 'GET', url: '/v1/tasks/1', headers: { authorization: 'Bearer sk-right' } })
  t.equal(res.statusCode, 200, 'other tenants are unaffected')
  t.equal(upstream.calls.length, 6)
})

t.test('gateway: under pass-through, one tenant\'s 429s never open the breaker for the others', async (t) => {
  const { app, upstream } = await setup(t, { breaker: { threshold: 2 }, upstream: { auth: 'passthrough', key: undefined, retries: 0 } })
  upstream.add({ id: '1' })
  for (let i = 0; i < 4; i++) {
    upstream.script({ kind: 'status', status: 429, headers: { 'retry-after': '60' } })
    const res = await app.inject({ method: 'GET', url: '/v1/tasks/1', headers: { authorization: 'Bearer sk-noisy-tenant' } })
    t.equal(res.statusCode, 429, 'the tenant\'s own limit')
    t.equal(res.json().code, 'UPSTREAM_CREDENTIAL_RATE_LIMITED')
    t.equal(res.headers['retry-after'], '60')
  }
  t.equal(app.gateway.breaker.state, 'closed')
  const res = await app.inject({ method: 'GET', url: '/v1/tasks/1', headers: { authorization: 'Bearer sk-quiet-tenant' } })
  t.equal(res.statusCode, 200, 'the quiet tenant is served')
  t.same(upstream.calls.map((c) => c.authorization), [...Array(4).fill('Bearer sk-noisy-tenant'), 'Bearer sk-quiet-tenant'])
})

t.test('gateway: a batch of many ids counts as one failure, and every waiter gets the error', async (t) => {
  const { app, upstream } = await setup(t, { breaker: { threshold: 2 } })
  upstream.script({ kind: 'status', status: 500 })
  const ids = Array.from({ length: 20 }, (_, i) => `${i}`)
  const res = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { ids } })
  t.equal(res.statusCode, 502)
  t.equal(upstream.calls.length, 1)
  t.equal(app.gateway.breaker.state, 'closed', 'one failed call, not twenty')
  await until(() => app.gateway.batcher.stats.lanes === 0)
})
