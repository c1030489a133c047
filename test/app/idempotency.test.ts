import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { buildApp } from '../../src/app.js'
import type { GatewayOptions } from '../../src/config.js'
import { startRedis, type RedisServer } from '../helpers/redis.js'
import { Gate, submitCalls } from '../helpers/submits.js'
import { startSimulator, type StartedSimulator } from '../helpers/simulator.js'
import { waitFor } from '../helpers/gateway.js'

/*
 * Idempotency keys across replicas: gateways sharing one Redis (REDIS_URL)
 * in front of one simulator, as a load balancer would spread a client's retries.
 */

const PREFIX = 'gw-test:'
const TENANTS = ['sk-tenant-a-secret-0123456789', 'sk-tenant-b-secret-0123456789']
const CLIENT_KEY = 'client-key-secret-0123456789'

interface Cluster {
  sim: StartedSimulator['sim']
  gate: Gate
  redis: RedisServer
  replica: (options?: Omit<GatewayOptions, 'upstream' | 'redis'> & { upstream?: GatewayOptions['upstream'] }) => Promise<FastifyInstance & { logs: string[] }>
}

async function cluster (t: Test, simulator: { keys?: string[] } = {}): Promise<Cluster> {
  const gate = new Gate()
  const { sim, url, key } = await startSimulator(t, { sleep: gate.sleep, ...simulator })
  const redis = await startRedis(t)
  t.teardown(() => gate.releaseAll())
  const replica: Cluster['replica'] = async (options = {}) => {
    const logs: string[] = []
    const stream = new Writable({ write (chunk, _enc, done) { logs.push(String(chunk)); done() } })
    const passthrough = options.upstream?.auth === 'passthrough'
    const app = await buildApp({
      ...options,
      upstream: { baseUrl: url, ...(passthrough ? {} : { key }), timeoutMs: 2_000, ...options.upstream },
      redis: { url: redis.url, prefix: PREFIX, timeoutMs: 500 }
    }, { logger: { level: 'warn', stream } })
    t.teardown(() => app.close())
    await app.ready()
    await waitFor(() => app.redis?.state === 'up', 'the replica to reach Redis')
    return Object.assign(app, { logs })
  }
  return { sim, gate, redis, replica }
}

const imagine = (key: string, body: unknown = { prompt: 'a red fox' }, headers: Record<string, string> = {}): InjectOptions => ({
  method: 'POST',
  url: '/mj/submit/imagine',
  headers: { 'content-type': 'application/json', 'idempotency-key': key, ...headers },
  payload: JSON.stringify(body)
})

async function graphqlImagine (app: FastifyInstance, key: string, prompt = 'a red fox'): Promise<Record<string, any>> {
  const res = await app.inject({
    method: 'POST',
    url: '/graphql',
    payload: { query: 'mutation ($p: String!, $k: String) { imagine(input: { prompt: $p }, idempotencyKey: $k) { code result replayed } }', variables: { p: prompt, k: key } }
  })
  return res.json()
}

t.test('a key used on one replica is honoured on another sharing the Redis', async (t) => {
  const { sim, replica } = await cluster(t)
  const a = await replica()
  const b = await replica()
  const first = await a.inject(imagine('order-1'))
  t.equal(first.statusCode, 200)
  const onB = await b.inject(imagine('order-1'))
  t.equal(onB.body, first.body)
  t.equal(onB.headers['idempotent-replayed'], 'true')
  const viaGraphql = await graphqlImagine(b, 'order-1')
  t.strictSame(viaGraphql.data.imagine, { code: 1, result: first.json().result, replayed: true })
  const reused = await b.inject(imagine('order-1', { prompt: 'a different fox' }))
  t.equal(reused.statusCode, 422)
  t.equal(submitCalls(sim).length, 1, 'one submit for the three requests')
})

t.test('while one replica has a key in flight, another answers 409 and sends nothing', async (t) => {
  const { sim, gate, replica } = await cluster(t)
  const a = await replica()
  const b = await replica()
  sim.faults.add({ route: 'imagine', kind: 'latency', ms: 1, times: 1 })
  const first = a.inject(imagine('busy'))
  await gate.waitForHeld(1)
  const onB = await b.inject(imagine('busy'))
  t.equal(onB.statusCode, 409)
  t.equal(onB.json().code, 'GW_ERR_IDEMPOTENCY_KEY_IN_USE')
  gate.releaseAll()
  const answered = await first
  t.equal((await b.inject(imagine('busy'))).body, answered.body)
  t.equal(submitCalls(sim).length, 1)
})

t.test('after an upstream 5xx on one replica, the retry on another goes upstream', async (t) => {
  const { sim, replica } = await cluster(t)
  const a = await replica()
  const b = await replica()
  sim.faults.add({ route: 'imagine', kind: 'error', status: 502, times: 1 })
  t.equal((await a.inject(imagine('k'))).statusCode, 502)
  const retried = await b.inject(imagine('k'))
  t.equal(retried.statusCode, 200)
  t.equal(retried.headers['idempotent-replayed'], undefined)
  t.equal(submitCalls(sim).length, 2)
})

t.test('Redis holds no credential: keys are hashed, values hold the answer and a body hash only', async (t) => {
  const { sim, redis, replica } = await cluster(t, { keys: TENANTS })
  const a = await replica({ upstream: { auth: 'passthrough' }, security: { apiKeys: CLIENT_KEY } })
  const b = await replica({ upstream: { auth: 'passthrough' }, security: { apiKeys: CLIENT_KEY } })
  for (const [i, tenant] of TENANTS.entries()) {
    const headers = { authorization: `Bearer ${tenant}`, 'x-api-key': CLIENT_KEY }
    t.equal((await a.inject(imagine('same-key', { prompt: 'a secret prompt' }, headers))).statusCode, 200)
    t.equal((await b.inject(imagine('same-key', { prompt: 'a secret prompt' }, headers))).headers['idempotent-replayed'], 'true', `tenant ${i} replayed on the other replica`)
  }
  t.equal(submitCalls(sim).length, 2, 'one submit per tenant')

  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const keys = (await client.keys('*')).sort()
  t.equal(keys.length, 2)
  for (const key of keys) {
    t.match(key, /^gw-test:idem:[A-Za-z0-9_-]{43}$/)
    const value = (await client.get(key))!
    const entry = JSON.parse(value)
    t.strictSame(Object.keys(entry).sort(), ['body', 'fingerprint', 'state', 'statusCode'])
    for (const secret of [...TENANTS, CLIENT_KEY, 'same-key', 'Bearer']) t.notOk((key + value).includes(secret), `${key} never holds ${secret.slice(0, 12)}…`)
  }
})

t.test('with Redis down a submit with a key still works; the key then holds on that replica only', async (t) => {
  const { sim, redis, replica } = await cluster(t)
  const a = await replica()
  const b = await replica()
  await redis.kill()
  await waitFor(() => a.redis?.state === 'down' && b.redis?.state === 'down', 'the replicas to see Redis down')
  const first = await a.inject(imagine('outage'))
  t.equal(first.statusCode, 200, 'not refused because Redis is down')
  const again = await a.inject(imagine('outage'))
  t.equal(again.headers['idempotent-replayed'], 'true', 'the same replica remembers the key')
  // The weaker guarantee, as documented: another replica cannot know the key.
  const elsewhere = await b.inject(imagine('outage'))
  t.equal(elsewhere.headers['idempotent-replayed'], undefined)
  t.equal(submitCalls(sim).length, 2)
  t.ok(a.logs.some((line) => line.includes('"component":"idempotency"') && line.includes('"operation":"claim"')), 'the fallback is logged')

  // Redis back (empty): the replica that saw the key during the outage still honours it.
  await redis.restart()
  await waitFor(() => a.redis?.state === 'up', 'the replica to reconnect', 10_000)
  t.equal((await a.inject(imagine('outage'))).headers['idempotent-replayed'], 'true')
  t.equal(submitCalls(sim).length, 2)
})

t.test('when Redis goes down while a submit is in flight, its answer is kept on that replica', async (t) => {
  const { sim, gate, redis, replica } = await cluster(t)
  const a = await replica()
  sim.faults.add({ route: 'imagine', kind: 'latency', ms: 1, times: 1 })
  const first = a.inject(imagine('mid-flight'))
  await gate.waitForHeld(1)
  await redis.kill()
  await waitFor(() => a.redis?.state === 'down', 'the replica to see Redis down')
  gate.releaseAll()
  const answered = await first
  t.equal(answered.statusCode, 200, 'the submit is answered')
  const retry = await a.inject(imagine('mid-flight'))
  t.equal(retry.body, answered.body)
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.equal(submitCalls(sim).length, 1)
  t.ok(a.logs.some((line) => line.includes('"operation":"complete"')), 'the failed write is logged')
})
