import t from 'tap'
import { setup } from '../helpers/gateway.js'

const KEY_A = 'gw-client-key-alpha-0123456789'
const KEY_B = 'gw-client-key-bravo-9876543210'

t.test('off unless RATE_LIMIT_MAX is set', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1' })
  for (let i = 0; i < 50; i++) {
    const res = await app.inject({ url: '/v1/tasks/1' })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-ratelimit-limit'], undefined)
  }
})

t.test('per IP address without client keys: 429 in the gateway\'s error shape, with Retry-After', async (t) => {
  const { app, upstream } = await setup(t, { security: { rateLimitMax: 3, rateLimitWindowMs: 30_000 } })
  upstream.add({ id: '1' })
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ url: '/v1/tasks/1', remoteAddress: '10.0.0.1' })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-ratelimit-remaining'], String(2 - i))
  }
  const limited = await app.inject({ url: '/v1/tasks/1', remoteAddress: '10.0.0.1' })
  t.equal(limited.statusCode, 429)
  t.match(limited.headers['content-type'], /json/)
  t.match(limited.json(), { statusCode: 429, code: 'GW_ERR_RATE_LIMITED', error: 'Too Many Requests', message: /at most 3 requests per 30 s/ })
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 30, `Retry-After: ${retryAfter}`)

  const gql = await app.inject({ method: 'POST', url: '/graphql', remoteAddress: '10.0.0.1', payload: { query: '{ task(id: "1") { id } }' } })
  t.equal(gql.statusCode, 429)
  t.match(gql.json(), { errors: [{ message: /Rate limit exceeded/, extensions: { code: 'GW_ERR_RATE_LIMITED' } }] })
  t.ok(gql.headers['retry-after'])

  t.equal((await app.inject({ url: '/v1/tasks/1', remoteAddress: '10.0.0.2' })).statusCode, 200, 'another address has its own budget')
  for (let i = 0; i < 10; i++) {
    t.equal((await app.inject({ url: '/healthz', remoteAddress: '10.0.0.1' })).statusCode, 200, 'health probes are never limited')
    t.equal((await app.inject({ url: '/readyz', remoteAddress: '10.0.0.1' })).statusCode, 200)
  }
})

t.test('per client key when keys are on; failed attempts count against the address', async (t) => {
  const { app, upstream } = await setup(t, { security: { apiKeys: `${KEY_A},${KEY_B}`, rateLimitMax: 2 } })
  upstream.add({ id: '1' })
  const as = (key: string, ip: string) => app.inject({ url: '/v1/tasks/1', headers: { 'x-api-key': key }, remoteAddress: ip })

  // Key A from two addresses shares one budget.
  t.equal((await as(KEY_A, '10.0.0.1')).statusCode, 200)
  t.equal((await as(KEY_A, '10.0.0.2')).statusCode, 200)
  t.equal((await as(KEY_A, '10.0.0.3')).statusCode, 429, 'the key\'s budget, whatever the address')
  // Key B from the same address is not affected.
  t.equal((await as(KEY_B, '10.0.0.1')).statusCode, 200)

  // Wrong keys are not identities: rotating them does not buy a fresh budget.
  t.equal((await as('gw-client-key-wrong-0000000001', '10.0.0.9')).statusCode, 401)
  t.equal((await as('gw-client-key-wrong-0000000002', '10.0.0.9')).statusCode, 401)
  const third = await as('gw-client-key-wrong-0000000003', '10.0.0.9')
  t.equal(third.statusCode, 429, 'guessing is rate limited per address')
  t.ok(third.headers['retry-after'])
})

t.test('RATE_LIMIT_MAX and RATE_LIMIT_WINDOW_MS come from the environment', async (t) => {
  const { configFromEnv, normalizeConfig } = await import('../../src/config.js')
  const config = normalizeConfig(configFromEnv({ RATE_LIMIT_MAX: '100', RATE_LIMIT_WINDOW_MS: '1000' }))
  t.same({ max: config.security.rateLimitMax, window: config.security.rateLimitWindowMs }, { max: 100, window: 1000 })
  t.throws(() => configFromEnv({ RATE_LIMIT_MAX: '0' }), /RATE_LIMIT_MAX/)
})

t.test('behind a balancer named by TRUST_PROXY, each forwarded client has its own budget; other peers cannot forward', async (t) => {
  const { app, upstream } = await setup(t, { security: { rateLimitMax: 1, trustProxy: ['10.0.0.0/24'] } })
  upstream.add({ id: '1' })
  const via = (peer: string, client: string) => app.inject({ url: '/v1/tasks/1', remoteAddress: peer, headers: { 'x-forwarded-for': client } })

  t.equal((await via('10.0.0.5', '203.0.113.1')).statusCode, 200)
  t.equal((await via('10.0.0.6', '203.0.113.2')).statusCode, 200, 'another client through another balancer: its own budget')
  t.equal((await via('10.0.0.6', '203.0.113.1')).statusCode, 429, 'the first client again, through any balancer: its budget is spent')

  // A peer outside TRUST_PROXY is the client itself, whatever it forwards.
  t.equal((await via('198.51.100.9', '203.0.113.3')).statusCode, 200)
  t.equal((await via('198.51.100.9', '203.0.113.4')).statusCode, 429, 'a made-up X-Forwarded-For buys no fresh budget')
})

t.test('without TRUST_PROXY a forwarded address is ignored', async (t) => {
  const { app, upstream } = await setup(t, { security: { rateLimitMax: 1 } })
  upstream.add({ id: '1' })
  const from = (client: string) => app.inject({ url: '/v1/tasks/1', remoteAddress: '10.0.0.5', headers: { 'x-forwarded-for': client } })
  t.equal((await from('203.0.113.1')).statusCode, 200)
  t.equal((await from('203.0.113.2')).statusCode, 429, 'every request from the balancer shares its budget')
})
