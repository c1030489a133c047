import t from 'tap'
import { setup, TEST_KEY } from '../helpers/gateway.js'
import { cluster, inL2 } from '../helpers/replicas.js'

/** The value of one sample line, e.g. `gateway_batch_size_ids_sum`, or of `name{labels}`. */
function sample (text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    if (line.slice(0, space) === series) return Number(line.slice(space + 1))
  }
  return undefined
}

async function scrape (app: Awaited<ReturnType<typeof setup>>['app'], headers: Record<string, string> = {}): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers })
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
  return res.body
}

t.test('a burst of separate requests shows up as merged batches', async (t) => {
  const { app, upstream } = await setup(t)
  const ids = Array.from({ length: 24 }, (_, i) => `9000${i}`)
  upstream.add(...ids.map((id) => ({ id })))
  // 30 single-id requests over 24 ids: six of them repeat an id already asked for.
  const burst = Array.from({ length: 30 }, (_, i) => app.inject({ method: 'GET', url: `/v1/tasks/${ids[i % ids.length]}` }))
  const answers = await Promise.all(burst)
  t.ok(answers.every((res) => res.statusCode === 200))

  const text = await scrape(app)
  t.match(text, /^# TYPE gateway_batch_size_ids histogram$/m)
  const calls = sample(text, 'gateway_batch_size_ids_count')!
  const idSum = sample(text, 'gateway_batch_size_ids_sum')!
  t.equal(calls, upstream.calls.length, 'one histogram observation per upstream call')
  t.equal(idSum, upstream.calls.reduce((n, c) => n + c.ids.length, 0), 'ids summed as upstream received them')
  t.ok(idSum / calls > 1, `merged: ${idSum} ids over ${calls} calls`)
  t.equal(sample(text, 'gateway_batch_lookups_sum'), 30, 'every lookup answered by some call')
  t.equal(sample(text, 'gateway_cache_lookups_total{result="miss"}'), 30)
  t.equal(sample(text, 'gateway_cache_lookups_total{result="hit"}'), 0)
  t.equal(sample(text, 'gateway_upstream_calls_total{outcome="ok"}'), calls)
  t.equal(sample(text, 'gateway_upstream_in_flight'), 0)
  t.equal(sample(text, 'gateway_cache_entries'), ids.length)

  // The same ids again come from the cache.
  await Promise.all(ids.slice(0, 5).map((id) => app.inject({ method: 'GET', url: `/v1/tasks/${id}` })))
  const after = await scrape(app)
  t.equal(sample(after, 'gateway_cache_lookups_total{result="hit"}'), 5)
  t.equal(sample(after, 'gateway_batch_size_ids_count'), calls, 'no new upstream call')
})

t.test('upstream failures are counted by outcome, retries by themselves', async (t) => {
  const { app, upstream } = await setup(t, { upstream: { retries: 1 } })
  upstream.add({ id: '4242' })
  upstream.script({ kind: 'status', status: 500 })
  const failed = await app.inject({ method: 'GET', url: '/v1/tasks/4242' })
  t.equal(failed.statusCode, 502)
  upstream.script({ kind: 'status', status: 503 })
  const retried = await app.inject({ method: 'GET', url: '/v1/tasks/4243' })
  t.equal(retried.statusCode, 404, 'the retry got through; upstream has no such task')

  const text = await scrape(app)
  t.equal(sample(text, 'gateway_upstream_calls_total{outcome="UPSTREAM_ERROR"}'), 1)
  t.equal(sample(text, 'gateway_upstream_calls_total{outcome="ok"}'), 1)
  t.equal(sample(text, 'gateway_upstream_retries_total'), 1)
  t.equal(sample(text, 'gateway_upstream_call_duration_seconds_count{outcome="UPSTREAM_ERROR"}'), 1)
})

t.test('labels are route patterns: no task id, no raw URL, no credential', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1234567890123' })
  await app.inject({ method: 'GET', url: '/v1/tasks/1234567890123' })
  await app.inject({ method: 'GET', url: '/v1/tasks/7777777777777' })
  await app.inject({ method: 'GET', url: '/mj/task/1234567890123/fetch' })
  await app.inject({ method: 'GET', url: '/no/such/route/5555555555' })
  await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ task(id: "1234567890123") { id } }' } })
  await app.inject({ method: 'GET', url: '/v1/tasks/1234567890123', headers: { authorization: `Bearer ${TEST_KEY}` } })

  const text = await scrape(app)
  t.equal(sample(text, 'gateway_http_request_duration_seconds_count{method="GET",route="/v1/tasks/:id",status_code="200"}'), 2)
  t.equal(sample(text, 'gateway_http_request_duration_seconds_count{method="GET",route="/v1/tasks/:id",status_code="404"}'), 1)
  t.equal(sample(text, 'gateway_http_request_duration_seconds_count{method="GET",route="/mj/task/:id/fetch",status_code="200"}'), 1)
  t.equal(sample(text, 'gateway_http_request_duration_seconds_count{method="GET",route="__not_found",status_code="404"}'), 1)
  t.equal(sample(text, 'gateway_http_request_duration_seconds_count{method="POST",route="/graphql",status_code="200"}'), 1)
  for (const leak of ['1234567890123', '7777777777777', '5555555555', '/no/such', TEST_KEY, 'sk-test']) {
    t.notOk(text.includes(leak), `${leak} is not in the metrics text`)
  }
  t.match(text, /^process_cpu_user_seconds_total /m, 'default process metrics are there')
  t.match(text, /^gateway_ready 1$/m)
  t.match(text, /^gateway_upstream_breaker_state\{state="closed"\} 1$/m)
  t.match(text, /^gateway_upstream_breaker_state\{state="open"\} 0$/m)
})

t.test('METRICS_TOKEN protects /metrics', async (t) => {
  const token = 'metrics-token-0123456789'
  const lines: string[] = []
  const { app } = await setup(t, { metrics: { token } }, {
    logger: { level: 'trace', stream: { write: (line: string) => { lines.push(line) } } }
  })
  const none = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(none.statusCode, 401)
  t.equal(none.json().code, 'UNAUTHENTICATED')
  t.match(none.headers['www-authenticate'], /^Bearer/)
  const wrong = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer nope' } })
  t.equal(wrong.statusCode, 401)
  t.notOk(wrong.body.includes(token))
  const text = await scrape(app, { authorization: `Bearer ${token}` })
  t.match(text, /gateway_http_request_duration_seconds_count\{method="GET",route="\/metrics",status_code="401"\} 2/)
  t.notOk(lines.join('').includes(token), 'the token is never logged')
  t.ok(lines.length > 0, 'something was logged, so the check above means something')
})

t.test('METRICS_ENABLED=false removes /metrics', async (t) => {
  const { app } = await setup(t, { metrics: { enabled: false } })
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 404)
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
})

t.test('each app has its own registry', async (t) => {
  const a = await setup(t)
  const b = await setup(t)
  a.upstream.add({ id: '1' })
  await a.app.inject({ method: 'GET', url: '/v1/tasks/1' })
  t.equal(sample(await scrape(a.app), 'gateway_upstream_calls_total{outcome="ok"}'), 1)
  t.equal(sample(await scrape(b.app), 'gateway_upstream_calls_total{outcome="ok"}'), undefined)
})

t.test('the shared tier\'s gauge and counters: present with REDIS_URL, absent without', async (t) => {
  const { app } = await setup(t)
  t.notMatch(await scrape(app), /gateway_shared_/, 'nothing about a shared tier there is not')

  const cl = await cluster(t, {}, { count: 2 })
  const { apps: [a, b], upstream } = cl
  upstream.add({ id: '1' }, { id: '2' })
  await a!.inject({ url: '/v1/tasks?ids=1,2' })
  await inL2(cl, '1')
  await inL2(cl, '2')
  await b!.inject({ url: '/v1/tasks?ids=1,2,3' })
  const text = await scrape(b!)
  t.match(text, /^# TYPE gateway_shared_tier_up gauge$/m)
  t.equal(sample(text, 'gateway_shared_tier_up'), 1)
  t.equal(sample(text, 'gateway_shared_cache_lookups_total{result="hit"}'), 2)
  t.equal(sample(text, 'gateway_shared_cache_lookups_total{result="miss"}'), 1)
  t.equal(sample(text, 'gateway_shared_lease_waits_total'), 0)
  t.equal(sample(text, 'gateway_shared_lease_takeovers_total'), 0)
  for (const operation of ['acquire', 'settle', 'forget', 'rate-limit']) {
    t.equal(sample(text, `gateway_shared_tier_errors_total{operation="${operation}"}`), 0, `errors of ${operation}, from 0`)
  }
})
