import t from 'tap'
import { readFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { reconnectDelay } from '../../src/plugins/redis.js'
import { FakeUpstream } from '../helpers/fake-upstream.js'
import { TEST_KEY, waitFor } from '../helpers/gateway.js'
import { announcementListeners, cluster, eventually, inL2, metric } from '../helpers/replicas.js'
import { selfSignedCert, startRedis } from '../helpers/redis.js'
import { startServer } from '../helpers/server.js'

t.test('one log line per transition of the shared tier, never one per failed call', async (t) => {
  const redis = await startRedis(t)
  const upstream = await FakeUpstream.start()
  const lines: Array<{ component?: string, redis?: string, msg: string }> = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = await buildApp({ upstream: { baseUrl: upstream.url, key: TEST_KEY }, redis: { url: redis.url } }, { logger: { level: 'info', stream } })
  t.teardown(async () => { await app.close(); await upstream.close() })
  upstream.add(...Array.from({ length: 10 }, (_, i) => ({ id: String(i) })))
  await waitFor(() => app.redis!.state === 'up', 'Redis to be up')

  await redis.kill()
  await waitFor(() => app.redis!.state === 'down', 'Redis to be seen down')
  for (let i = 0; i < 10; i++) t.equal((await app.inject({ url: `/v1/tasks/${i}` })).statusCode, 200)
  await redis.restart()
  await waitFor(() => app.redis!.state === 'up', 'Redis to be back')
  const transitions = lines.filter((line) => line.component === 'redis').map((line) => line.redis)
  t.strictSame(transitions, ['up', 'down', 'up'])
  t.match(lines.find((line) => line.redis === 'down')!.msg, /serving from this replica and upstream/)
})

t.test('a replica started while Redis is down serves at once, and joins in when Redis comes up', async (t) => {
  const redis = await startRedis(t)
  await redis.kill()
  const upstream = await FakeUpstream.start()
  const apps = await Promise.all([0, 1].map(() => buildApp({ upstream: { baseUrl: upstream.url, key: TEST_KEY }, redis: { url: redis.url } }, { logger: false })))
  const client = new Redis(redis.url, { lazyConnect: true })
  client.on('error', () => {})
  t.teardown(async () => { client.disconnect(); await Promise.all(apps.map((app) => app.close())); await upstream.close() })
  upstream.add({ id: '1' }, { id: '2' })
  for (const app of apps) {
    t.equal((await app.inject({ url: '/v1/tasks/1' })).statusCode, 200, 'answers without Redis')
    t.strictSame((await app.inject({ url: '/readyz' })).json(), { ready: true, breaker: { state: 'closed', retryInMs: 0 }, redis: 'down' })
  }

  await redis.restart()
  await client.connect()
  await waitFor(() => apps.every((app) => app.redis!.state === 'up'), 'the replicas to connect')
  await eventually(async () => await announcementListeners(client) === 2, 'both replicas to subscribe')
  t.equal((await apps[0]!.inject({ url: '/v1/tasks/2' })).headers['x-cache'], 'miss')
  await inL2({ client }, '2')
  t.equal((await apps[1]!.inject({ url: '/v1/tasks/2' })).headers['x-cache'], 'hit', 'sharing')
  t.equal(upstream.calls.filter((call) => call.ids.includes('2')).length, 1)
})

t.test('reconnects back off with jitter, capped at 2 s, for ever', async (t) => {
  t.equal(reconnectDelay(0, () => 1), 50)
  t.equal(reconnectDelay(1, () => 1), 100)
  t.equal(reconnectDelay(10, () => 1), 2_000)
  t.equal(reconnectDelay(1_000, () => 0), 1_000, 'half the cap at the least')
})

t.test('a hung Redis costs a lookup at most REDIS_TIMEOUT_MS: answered from upstream, the failure counted', async (t) => {
  const { apps: [a], upstream, redis } = await cluster(t, { redis: { timeoutMs: 50 } }, { count: 1 })
  upstream.add({ id: '1' }, { id: '2' })
  redis.pause()
  t.teardown(() => redis.resume())
  const res = await a!.inject({ url: '/v1/tasks?ids=1,2' })
  t.equal(res.statusCode, 200)
  t.strictSame(res.json().map((task: { id: string }) => task.id), ['1', '2'])
  t.equal(res.headers['x-cache'], 'miss')
  t.strictSame(upstream.calls.map((call) => call.ids), [['1', '2']])
  t.equal(await metric(a!, 'gateway_shared_tier_errors_total{operation="acquire"}'), 1, 'one acquire for both ids, timed out')
  t.strictSame((await a!.inject({ url: '/readyz' })).json(), { ready: true, breaker: { state: 'closed', retryInMs: 0 }, redis: 'up' }, 'the connection itself is still up')
})

t.test('a first connection that fails is said once, with its reason and without the password; shutting down says nothing', async (t) => {
  const PASSWORD = 'redis-pass-S3CRET-0001'
  const redis = await startRedis(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  await admin.call('ACL', 'SETUSER', 'gateway', 'on', `>${PASSWORD}`, '~*', '&*', '+@all')
  const upstream = await FakeUpstream.start()
  t.teardown(() => upstream.close())
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } })
  const wrong = await buildApp({ upstream: { baseUrl: upstream.url, key: TEST_KEY }, redis: { url: `redis://gateway:not-${PASSWORD}@127.0.0.1:${redis.port}` } }, { logger: { level: 'trace', stream } })
  await waitFor(() => lines.some((line) => line.includes('"redis":"down"')), 'the failure to be logged')
  upstream.add({ id: '1' })
  t.equal((await wrong.inject({ url: '/v1/tasks/1' })).statusCode, 200, 'the replica serves without Redis')
  await wrong.close()
  const redisLines = lines.filter((line) => line.includes('"component":"redis"'))
  t.equal(redisLines.length, 1, 'one line, however many attempts')
  t.match(JSON.parse(redisLines[0]!).reason, /WRONGPASS/)
  t.notOk(lines.some((line) => line.includes(PASSWORD)), 'the password is in no log line')

  lines.length = 0
  const right = await buildApp({ upstream: { baseUrl: upstream.url, key: TEST_KEY }, redis: { url: `redis://gateway:${PASSWORD}@127.0.0.1:${redis.port}` } }, { logger: { level: 'info', stream } })
  await waitFor(() => right.redis!.state === 'up', 'the right password to connect')
  await right.close()
  t.strictSame(lines.filter((line) => line.includes('"component":"redis"')).map((line) => JSON.parse(line).redis), ['up'], 'no "down" line for the replica\'s own shutdown')
})

t.test('rediss://: TLS to Redis, the server checked against the CAs Node trusts (NODE_EXTRA_CA_CERTS adds one)', async (t) => {
  const dir = t.testdir({})
  const tls = selfSignedCert(dir)
  const redis = await startRedis(t, { tls })
  const upstream = await FakeUpstream.start()
  t.teardown(() => upstream.close())
  upstream.add({ id: '1' })
  const env = { COMETAPI_BASE_URL: upstream.url, COMETAPI_KEY: TEST_KEY, REDIS_URL: redis.url }
  t.match(redis.url, /^rediss:\/\//)

  const trusting = await startServer(t, { ...env, NODE_EXTRA_CA_CERTS: tls.certFile })
  await eventually(async () => (await (await fetch(`${trusting.url}/readyz`)).json()).redis === 'up', 'the TLS connection')
  t.equal((await fetch(`${trusting.url}/v1/tasks/1`)).status, 200)
  const client = new Redis(redis.url, { tls: { ca: readFileSync(tls.certFile) } })
  t.teardown(() => client.disconnect())
  await eventually(async () => (await client.keys('mjgw:task:*')).length === 1, 'the answer in L2, over TLS')

  // Without the CA, the certificate is refused: the replica serves alone, and says why once.
  const wary = await startServer(t, env)
  await eventually(() => wary.logs.some((line) => line.includes('"redis":"down"')), 'the refusal to be logged')
  t.match(wary.logs.find((line) => line.includes('"redis":"down"')), /self[- ]signed certificate/)
  t.equal((await (await fetch(`${wary.url}/readyz`)).json()).redis, 'down')
  t.equal((await fetch(`${wary.url}/v1/tasks/1`)).status, 200)
})
