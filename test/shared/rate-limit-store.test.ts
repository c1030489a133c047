import t from 'tap'
import { cluster, metric } from '../helpers/replicas.js'

const KEY = 'gw-client-key-limit-0123456789'
const SCRAPER = 'gw-client-key-scrape-0123456789'

t.test('counters live in Redis under <REDIS_PREFIX>rl:, one per client, expiring with the window', async (t) => {
  const { apps: [a, b], upstream, client } = await cluster(t, {
    security: { apiKeys: KEY, rateLimitMax: 10, rateLimitWindowMs: 30_000 },
    redis: { prefix: 'gw7:' }
  }, { count: 2 })
  upstream.add({ id: '1' })
  await a!.inject({ url: '/v1/tasks/1', headers: { 'x-api-key': KEY } })
  await b!.inject({ url: '/v1/tasks/1', headers: { 'x-api-key': KEY } })
  await a!.inject({ url: '/v1/tasks/1', remoteAddress: '10.1.2.3' })
  const keys = (await client.keys('gw7:rl:*')).sort()
  t.equal(keys.length, 2, 'the client key\'s counter and the address\'s')
  t.match(keys[0], /^gw7:rl:ip:10\.1\.2\.3$/)
  t.match(keys[1], /^gw7:rl:key:[\w-]+$/, 'a client key counts by its digest')
  t.equal(await client.get(keys[1]!), '2', 'both replicas counted into one counter')
  const ttl = await client.pttl(keys[1]!)
  t.ok(ttl > 0 && ttl <= 30_000, `expires with the window (${ttl} ms)`)
})

t.test('a Redis call that fails or times out is counted locally instead: the request is answered, the failure reported', async (t) => {
  const { apps: [a], upstream, redis } = await cluster(t, {
    security: { apiKeys: `${KEY},${SCRAPER}`, rateLimitMax: 2 },
    redis: { timeoutMs: 50 }
  }, { count: 1 })
  upstream.add({ id: '1' })
  t.equal((await a!.inject({ url: '/v1/tasks/1', headers: { 'x-api-key': KEY } })).headers['x-ratelimit-remaining'], '1', 'counted in Redis')
  redis.pause()
  t.teardown(() => redis.resume())
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await a!.inject({ url: '/v1/tasks/1', headers: { 'x-api-key': KEY } })).statusCode)
  t.strictSame(statuses, [200, 200, 429], 'the local counter limits on its own while Redis hangs')
  redis.resume()
  t.equal(await metric(a!, 'gateway_shared_tier_errors_total{operation="rate-limit"}', { 'x-api-key': SCRAPER }), 3)
})
