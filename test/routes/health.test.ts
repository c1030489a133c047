import t from 'tap'
import { buildApp } from '../../src/app.js'
import { FakeUpstream } from '../helpers/fake-upstream.js'
import { ManualClock, setup, TEST_KEY } from '../helpers/gateway.js'

t.test('readiness: not ready while starting, ready once serving', async (t) => {
  const upstream = await FakeUpstream.start()
  t.teardown(() => upstream.close())
  const app = await buildApp({ upstream: { baseUrl: upstream.url, key: TEST_KEY } }, { logger: false })
  t.teardown(() => app.close())
  t.strictSame(app.gateway.readiness(), { ready: false, reason: 'starting', breaker: { state: 'closed', retryInMs: 0 } })
  await app.ready()
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 200)
  t.strictSame(res.json(), { ready: true, breaker: { state: 'closed', retryInMs: 0 } })
})

t.test('readiness during an upstream outage: 200 with the breaker open, its state and reason in the body', async (t) => {
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, { breaker: { threshold: 1, cooldownMs: 10_000 } }, { now: clock.now })
  upstream.script({ kind: 'status', status: 500, body: '{"description":"down for maintenance"}' })
  t.equal((await app.inject({ url: '/v1/tasks/1' })).statusCode, 502)
  t.equal(app.gateway.breaker.state, 'open')
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 200)
  t.strictSame(res.json(), {
    ready: true,
    breaker: { state: 'open', retryInMs: 10_000, reason: '1 consecutive upstream failures, last: Upstream call failed: HTTP 500: down for maintenance' }
  })
})

t.test('while shutting down: /readyz is 503 and says so, /healthz answers, every other route is a coded 503', async (t) => {
  const upstream = await FakeUpstream.start()
  t.teardown(() => upstream.close())
  upstream.add({ id: '1' })
  const app = await buildApp({ upstream: { baseUrl: upstream.url, key: TEST_KEY } }, { logger: false })
  // Runs after the gateway's own preClose hooks, while the server still accepts connections.
  const seen: Array<{ url: string, status: number, connection: string | null, body: unknown }> = []
  app.addHook('preClose', async () => {
    for (const url of ['/readyz', '/healthz', '/v1/tasks/1', '/graphql?query=%7B__typename%7D']) {
      const res = await fetch(base + url)
      seen.push({ url, status: res.status, connection: res.headers.get('connection'), body: await res.json() })
    }
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal((await fetch(`${base}/v1/tasks/1`)).status, 200)
  await app.close()

  const shuttingDown = { statusCode: 503, code: 'GW_ERR_SHUTTING_DOWN', error: 'Service Unavailable', message: 'The gateway is shutting down: retry, and another instance will answer' }
  t.strictSame(seen, [
    { url: '/readyz', status: 503, connection: 'close', body: { ready: false, reason: 'shutting down', breaker: { state: 'closed', retryInMs: 0 } } },
    { url: '/healthz', status: 200, connection: 'close', body: { status: 'ok' } },
    { url: '/v1/tasks/1', status: 503, connection: 'close', body: shuttingDown },
    { url: '/graphql?query=%7B__typename%7D', status: 503, connection: 'close', body: { errors: [{ message: shuttingDown.message, extensions: { code: 'GW_ERR_SHUTTING_DOWN' } }] } }
  ])
  t.equal(upstream.calls.length, 1, 'nothing reached upstream while shutting down')
})
