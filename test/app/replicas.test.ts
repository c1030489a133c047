import t, { type Test } from 'tap'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import WebSocket from 'ws'
import { createClient } from 'graphql-ws'
import { buildApp } from '../../src/app.js'
import { partitionOf, SHARED_SCOPE } from '../../src/core/scope.js'
import type { WatchEvent } from '../../src/core/watcher.js'
import { FakeUpstream } from '../helpers/fake-upstream.js'
import { TEST_KEY, waitFor } from '../helpers/gateway.js'
import { askedIds, cluster, eventually, inL2, metric } from '../helpers/replicas.js'
import { startServer } from '../helpers/server.js'
import { SseReader } from '../helpers/sse.js'
import { startRedis } from '../helpers/redis.js'

/*
 * Three gateways sharing one redis-server and one fake upstream: replicas
 * behind a balancer. Every scenario asserts the fake upstream's call log.
 */

const get = (app: FastifyInstance, url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers })

t.test('without REDIS_URL every replica fetches for itself (the problem this solves)', async (t) => {
  const upstream = await FakeUpstream.start()
  const apps = await Promise.all([0, 1, 2].map(() => buildApp({ upstream: { baseUrl: upstream.url, key: TEST_KEY } }, { logger: false })))
  t.teardown(async () => { await Promise.all(apps.map((app) => app.close())); await upstream.close() })
  upstream.add({ id: '1' })
  for (const app of apps) t.equal((await get(app, '/v1/tasks/1')).headers['x-cache'], 'miss')
  t.equal(upstream.calls.length, 3)
  t.equal(apps[0]!.redis, undefined)
  t.strictSame((await get(apps[0]!, '/readyz')).json(), { ready: true, breaker: { state: 'closed', retryInMs: 0 } }, '/readyz says nothing of Redis when there is none')
})

t.test('a task fetched through one replica is a hit on the others, on REST and GraphQL', async (t) => {
  const cl = await cluster(t)
  const { apps: [a, b, c], upstream } = cl
  upstream.add({ id: '1', prompt: 'a lighthouse' })
  const first = await get(a!, '/v1/tasks/1')
  t.equal(first.headers['x-cache'], 'miss')
  await inL2(cl, '1')
  const onB = await get(b!, '/v1/tasks/1')
  t.equal(onB.statusCode, 200)
  t.equal(onB.headers['x-cache'], 'hit', 'x-cache: hit for an answer from L2')
  t.strictSame(onB.json(), first.json())
  const gql = await c!.inject({ method: 'POST', url: '/graphql', payload: { query: '{ task(id: "1") { id prompt } }' } })
  t.strictSame(gql.json(), { data: { task: { id: '1', prompt: 'a lighthouse' } } })
  t.strictSame(upstream.calls.map((call) => call.ids), [['1']], 'one upstream call for the three replicas')
  t.equal(await metric(b!, 'gateway_shared_cache_lookups_total{result="hit"}'), 1)
  t.equal(await metric(a!, 'gateway_shared_cache_lookups_total{result="miss"}'), 1)
})

/**
 * Two replicas without retries: task 5 fetched through A and in L2, then
 * 7 s pass, so both must ask upstream again and L2 holds only a stale copy.
 */
async function expiredInL2 (t: Test): Promise<{ a: FastifyInstance, b: FastifyInstance, upstream: FakeUpstream }> {
  const cl = await cluster(t, { upstream: { retries: 0 } }, { count: 2 })
  const { apps: [a, b], upstream, clock } = cl
  upstream.add({ id: '5', status: 'IN_PROGRESS', progress: '40%' })
  t.equal((await get(a!, '/v1/tasks/5')).statusCode, 200)
  await inL2(cl, '5')
  clock.advance(2_000 + 5_000)
  return { a: a!, b: b!, upstream }
}

t.test('stale-if-error: a replica that never saw a task serves the copy L2 still holds, marked stale', async (t) => {
  const { b, upstream } = await expiredInL2(t)
  upstream.script({ kind: 'status', status: 500 })
  const res = await get(b, '/v1/tasks/5')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-cache'], 'stale')
  t.equal(res.headers.age, '7')
  t.equal(res.json().progress, '40%')
  t.equal(upstream.calls.length, 2, 'B tried upstream first')
})

t.test('stale-if-error never covers a refusal: L2\'s copy does not hide upstream refusing the key, a 429 is covered', async (t) => {
  const { a, b, upstream } = await expiredInL2(t)
  upstream.script({ kind: 'status', status: 401 })
  const refused = await get(b, '/v1/tasks/5')
  t.strictSame([refused.statusCode, refused.json().code, refused.headers['x-cache']], [502, 'UPSTREAM_KEY_REJECTED', undefined])
  upstream.script({ kind: 'status', status: 429 })
  const limited = await get(a, '/v1/tasks/5')
  t.strictSame([limited.statusCode, limited.headers['x-cache']], [200, 'stale'])
  t.equal(upstream.calls.length, 3, 'both replicas asked upstream')
})

t.test('a burst of 150 lookups over 120 ids, spread over three replicas, asks upstream for each id once', async (t) => {
  const { apps, upstream } = await cluster(t)
  const ids = Array.from({ length: 120 }, (_, i) => `7${String(i).padStart(12, '0')}`)
  upstream.add(...ids.map((id) => ({ id })))
  const burst = Array.from({ length: 150 }, (_, i) => get(apps[i % 3]!, `/v1/tasks/${ids[i % ids.length]}`))
  const answers = await Promise.all(burst)
  t.ok(answers.every((res, i) => res.statusCode === 200 && res.json().id === ids[i % ids.length]), 'every lookup answered with its task')
  t.strictSame(askedIds(upstream), [...ids].sort(), 'each id asked for exactly once, across all calls')
})

t.test('a replica killed in the middle of a call: the same lookup on another replica is answered once its lease runs out', async (t) => {
  const { apps: [b], upstream, redis } = await cluster(t, { upstream: { timeoutMs: 500 } }, { count: 1 })
  upstream.add({ id: '42', prompt: 'a kite' })
  // Replica A is a real gateway process; its upstream call hangs, and it is killed with SIGKILL.
  const a = await startServer(t, {
    COMETAPI_BASE_URL: upstream.url,
    COMETAPI_KEY: TEST_KEY,
    REDIS_URL: redis.url,
    UPSTREAM_TIMEOUT_MS: '500'
  })
  await eventually(async () => (await (await fetch(`${a.url}/readyz`)).json()).redis === 'up', 'replica A to connect to Redis')
  upstream.script({ kind: 'hang' })
  fetch(`${a.url}/v1/tasks/42`).catch(() => {})
  await upstream.waitForCalls(1)
  a.child.kill('SIGKILL')

  const res = await get(b!, '/v1/tasks/42')
  t.equal(res.statusCode, 200)
  t.equal(res.json().prompt, 'a kite')
  t.strictSame(upstream.calls.map((call) => call.ids), [['42'], ['42']], 'A\'s call, then B\'s after the lease ran out; nothing in between')
  t.equal(await metric(b!, 'gateway_shared_lease_waits_total'), 1, 'B waited on A\'s lease')
  t.equal(await metric(b!, 'gateway_shared_lease_takeovers_total'), 1, 'then took it over')
})

t.test('Redis killed: every replica still answers and /readyz says so; restarted: sharing resumes', async (t) => {
  const cl = await cluster(t)
  const { apps, upstream, redis, ready } = cl
  const [a, b, c] = apps
  upstream.add({ id: '1' }, { id: '2' }, { id: '3' })
  t.equal((await get(a!, '/v1/tasks/1')).statusCode, 200)
  t.strictSame((await get(b!, '/readyz')).json(), { ready: true, breaker: { state: 'closed', retryInMs: 0 }, redis: 'up' })

  await redis.kill()
  await waitFor(() => apps.every((app) => app.redis!.state === 'down'), 'every replica to see Redis go')
  for (const app of apps) {
    const ready = await get(app, '/readyz')
    t.equal(ready.statusCode, 200, '/readyz stays 200')
    t.strictSame(ready.json(), { ready: true, breaker: { state: 'closed', retryInMs: 0 }, redis: 'down' })
    t.equal(await metric(app, 'gateway_shared_tier_up'), 0)
    const fresh = await get(app, '/v1/tasks/2')
    t.equal(fresh.statusCode, 200, 'a new id is fetched from upstream')
    t.equal(fresh.json().id, '2')
  }
  t.equal((await get(a!, '/v1/tasks/1')).headers['x-cache'], 'hit', 'L1 still serves')
  t.equal(upstream.calls.filter((call) => call.ids.includes('2')).length, 3, 'alone, each replica asks upstream itself')

  await redis.restart()
  await ready()
  for (const app of apps) t.strictSame((await get(app, '/readyz')).json(), { ready: true, breaker: { state: 'closed', retryInMs: 0 }, redis: 'up' })
  t.equal((await get(c!, '/v1/tasks/3')).headers['x-cache'], 'miss')
  await inL2(cl, '3')
  t.equal((await get(a!, '/v1/tasks/3')).headers['x-cache'], 'hit', 'sharing resumed by itself')
  t.equal((await get(b!, '/v1/tasks/3')).headers['x-cache'], 'hit')
  t.equal(upstream.calls.filter((call) => call.ids.includes('3')).length, 1)
})

t.test('tenants stay apart across replicas under pass-through', async (t) => {
  const ALPHA = 'sk-tenant-alpha-0123456789'
  const BRAVO = 'sk-tenant-bravo-0123456789'
  const cl = await cluster(t, { upstream: { auth: 'passthrough' } })
  const { apps: [a, b, c], upstream } = cl
  upstream.add({ id: '11', prompt: 'alpha\'s task' })
  upstream.owners.set('11', ALPHA)
  const as = (app: FastifyInstance, key: string) => get(app, '/v1/tasks/11', { authorization: `Bearer ${key}` })

  t.equal((await as(a!, ALPHA)).json().prompt, 'alpha\'s task')
  await inL2(cl, '11', partitionOf(ALPHA))
  const bravo = await as(b!, BRAVO)
  t.equal(bravo.statusCode, 404, 'another tenant never gets alpha\'s entry from L2')
  await inL2(cl, '11', partitionOf(BRAVO))
  t.equal((await as(c!, BRAVO)).headers['x-cache'], 'hit', 'bravo\'s own "unknown" is shared among bravo\'s lookups')
  const again = await as(c!, ALPHA)
  t.equal(again.headers['x-cache'], 'hit')
  t.equal(again.json().prompt, 'alpha\'s task')
  t.strictSame(upstream.calls, [
    { ids: ['11'], authorization: `Bearer ${ALPHA}` },
    { ids: ['11'], authorization: `Bearer ${BRAVO}` }
  ])
})

t.test('no credential anywhere in Redis: every key, value, announcement and connection scanned', async (t) => {
  const COMETAPI_KEY = 'sk-cometapi-S3CRET-key-000111'
  const CLIENT_KEY = 'gw-client-key-S3CRET-000222'
  const TENANT = 'sk-tenant-S3CRET-cometapi-000333'
  const METRICS_TOKEN = 'metrics-token-S3CRET-000444'
  const REDIS_PASSWORD = 'redis-password-S3CRET-000555'
  const needles = [COMETAPI_KEY, CLIENT_KEY, TENANT, METRICS_TOKEN, REDIS_PASSWORD].flatMap((s) => [s, s.slice(4, 20)])

  // A Redis ACL user with a password, as in production; the gateways log in with it from the URL.
  const redis = await startRedis(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  await admin.call('ACL', 'SETUSER', 'gateway', 'on', `>${REDIS_PASSWORD}`, '~mjgw:*', '&mjgw:*', '+@all')
  const url = `redis://gateway:${REDIS_PASSWORD}@127.0.0.1:${redis.port}`
  const announcements: string[] = []
  const spy = new Redis(redis.url)
  t.teardown(() => spy.disconnect())
  await spy.psubscribe('*')
  spy.on('pmessage', (_pattern, channel, message) => { announcements.push(`${channel} ${message}`) })

  const keyed = await cluster(t, {
    upstream: { key: COMETAPI_KEY, retries: 0 },
    security: { apiKeys: CLIENT_KEY, rateLimitMax: 1000 },
    metrics: { token: METRICS_TOKEN },
    redis: { url }
  }, { redis })
  const tenants = await cluster(t, { upstream: { auth: 'passthrough', retries: 0 }, redis: { url } }, { redis })
  keyed.upstream.add({ id: '1' }, { id: '2', status: 'SUCCESS', progress: '100%' })
  tenants.upstream.add({ id: '1' })
  const client = { 'x-api-key': CLIENT_KEY }
  const tenant = { authorization: `Bearer ${TENANT}` }
  for (const app of keyed.apps) {
    await get(app, '/v1/tasks?ids=1,2,3', client)
    await app.inject({ method: 'POST', url: '/graphql', headers: client, payload: { query: '{ tasks(ids: ["1", "4"]) { id } }' } })
    await get(app, '/metrics', { authorization: `Bearer ${METRICS_TOKEN}` })
  }
  keyed.upstream.script({ kind: 'status', status: 500, body: `{"description":"bad key ${COMETAPI_KEY}","type":"upstream_error","code":4}` })
  keyed.clock.advance(5_000)
  await get(keyed.apps[0]!, '/v1/tasks/5', client)
  for (const app of tenants.apps) await get(app, '/v1/tasks?ids=1,6', tenant)
  // Four fetches: ids 1-3 and 4 on the first keyed replica, the failed 5, the tenant's 1 and 6; the rest were L2 hits.
  await eventually(() => announcements.length === 4, 'the four announcements')

  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await admin.scan(cursor, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  t.ok(keys.some((key) => key.startsWith('mjgw:task:')), 'task entries are there')
  t.ok(keys.some((key) => key.startsWith('mjgw:rl:')), 'rate-limit counters are there')
  const values: string[] = []
  for (const key of keys) {
    t.equal(await admin.type(key), 'string', `${key} is a plain string`)
    values.push(`${key} = ${await admin.get(key)}`)
  }
  const clients = await admin.call('CLIENT', 'LIST') as string
  for (const needle of needles) {
    t.strictSame(values.filter((text) => text.includes(needle)), [], `no key or value contains ${needle.slice(0, 10)}…`)
    t.strictSame(announcements.filter((text) => text.includes(needle)), [], `no announcement contains ${needle.slice(0, 10)}…`)
    t.notOk(clients.includes(needle), `no connection name contains ${needle.slice(0, 10)}…`)
  }
  t.ok(values.filter((v) => v.includes('mjgw:task:')).every((v) => /= \{"freshUntil":\d+,"storedAt":\d+,"task":(null|\{)/.test(v)), 'task values are task JSON')
})

t.test('the rate limit counts across replicas, and per replica while Redis is down', async (t) => {
  const KEY = 'gw-client-key-rate-0123456789'
  const { apps, upstream, redis } = await cluster(t, { security: { apiKeys: KEY, rateLimitMax: 4, rateLimitWindowMs: 60_000 } })
  upstream.add({ id: '1' })
  const as = (i: number) => get(apps[i % 3]!, '/v1/tasks/1', { 'x-api-key': KEY })
  const remaining: Array<string | undefined> = []
  for (let i = 0; i < 4; i++) {
    const res = await as(i)
    t.equal(res.statusCode, 200)
    remaining.push(res.headers['x-ratelimit-remaining'] as string)
  }
  t.strictSame(remaining, ['3', '2', '1', '0'], 'one budget, whichever replica answers')
  for (let i = 4; i < 7; i++) {
    const limited = await as(i)
    t.equal(limited.statusCode, 429, `request ${i + 1} is over the cluster's limit`)
    t.equal(limited.json().code, 'GW_ERR_RATE_LIMITED')
    t.ok(Number(limited.headers['retry-after']) >= 1)
  }

  await redis.kill()
  await waitFor(() => apps.every((app) => app.redis!.state === 'down'), 'every replica to see Redis go')
  for (const app of apps) {
    const res = await get(app, '/v1/tasks/1', { 'x-api-key': KEY })
    t.equal(res.statusCode, 200, 'no request fails because Redis is down')
    t.equal(res.headers['x-ratelimit-remaining'], '3', 'each replica counts on its own meanwhile')
  }
})

t.test('a GraphQL subscribe on a WebSocket spends the cluster\'s budget, as a request does', async (t) => {
  const KEY = 'gw-client-key-subscribe-0123456789'
  const { apps, upstream } = await cluster(t, { security: { apiKeys: KEY, rateLimitMax: 4, rateLimitWindowMs: 60_000 } }, { count: 2 })
  upstream.add({ id: '1', status: 'SUCCESS', progress: '100%' })
  for (let i = 0; i < 2; i++) t.equal((await get(apps[0]!, '/v1/tasks/1', { 'x-api-key': KEY })).statusCode, 200, `request ${i + 1} on replica A`)

  const address = await apps[1]!.listen({ port: 0, host: '127.0.0.1' })
  class KeyedSocket extends WebSocket {
    constructor (url: string, protocols?: string | string[]) { super(url, protocols, { headers: { 'x-api-key': KEY } }) }
  }
  const client = createClient({ url: address.replace(/^http/, 'ws') + '/graphql', webSocketImpl: KeyedSocket, retryAttempts: 0, lazy: false })
  t.teardown(() => client.dispose())
  const subscribe = () => new Promise<unknown>((resolve) => {
    client.subscribe({ query: 'subscription { taskUpdates(ids: ["1"]) { id status } }' }, {
      next: () => resolve('accepted'),
      error: (error) => resolve({ error }),
      complete: () => resolve('accepted')
    })
  })
  // On replica B the upgrade is the third request of the budget, the first subscribe the fourth.
  t.equal(await subscribe(), 'accepted', 'the fourth request fits')
  const calls = upstream.calls.length
  const refused = await subscribe() as { error: Array<{ extensions: unknown }> }
  t.strictSame(refused.error.map((e) => e.extensions), [{ code: 'GW_ERR_RATE_LIMITED' }], 'the fifth, a subscribe on B, is over the cluster\'s limit')
  t.equal(upstream.calls.length, calls, 'the refused subscribe reached no upstream')
  t.equal((await get(apps[0]!, '/v1/tasks/1', { 'x-api-key': KEY })).statusCode, 429, 'and replica A agrees')
})

t.test('watchers on three replicas read a watched id about as often as one replica would', async (t) => {
  const { apps, upstream, clock } = await cluster(t, { watch: { intervalMs: 3_600_000 } })
  upstream.add({ id: '77', status: 'IN_PROGRESS', progress: '0%' })
  const seen: string[][] = apps.map(() => [])
  for (const [i, app] of apps.entries()) {
    app.watcher.watch({
      ids: ['77'],
      scope: SHARED_SCOPE,
      client: `client-${i}`,
      onEvent: (event: WatchEvent) => { if (event.type === 'task') seen[i]!.push(event.task.progress!) }
    })
    await waitFor(() => seen[i]!.length === 1, `replica ${i}'s first state`)
  }
  t.equal(upstream.calls.length, 1, 'the first replica fetched; the others read L2')

  for (let round = 1; round <= 5; round++) {
    clock.advance(3_000)
    upstream.tasks.get('77')!.progress = `${round * 10}%`
    // Aligned ticks: every replica reads the watched id at the same moment.
    await Promise.all(apps.map((app) => app.watcher.tick()))
  }
  t.strictSame(upstream.calls.map((call) => call.ids), Array.from({ length: 6 }, () => ['77']), 'one read per interval for the whole cluster, as one replica would make')
  for (const states of seen) t.strictSame(states, ['0%', '10%', '20%', '30%', '40%', '50%'], 'every replica\'s subscribers saw every state once')
})

t.test('a change fetched by one replica reaches the watchers of the others at once, before their next tick', async (t) => {
  const { apps: [a, b, c], upstream, clock } = await cluster(t, { watch: { intervalMs: 3_600_000 } })
  upstream.add({ id: '88', status: 'IN_PROGRESS', progress: '5%' })
  const seen: Record<string, string[]> = { b: [], c: [] }
  for (const [name, app] of [['b', b!], ['c', c!]] as const) {
    app.watcher.watch({ ids: ['88'], scope: SHARED_SCOPE, client: name, onEvent: (e) => { if (e.type === 'task') seen[name]!.push(e.task.progress!) } })
  }
  await waitFor(() => seen.b!.length === 1 && seen.c!.length === 1, 'the first states')
  clock.advance(3_000)
  upstream.tasks.get('88')!.progress = '60%'
  t.equal((await get(a!, '/v1/tasks/88')).json().progress, '60%')
  await waitFor(() => seen.b!.length === 2 && seen.c!.length === 2, 'the change on B and C')
  t.strictSame(seen, { b: ['5%', '60%'], c: ['5%', '60%'] })
  t.equal(b!.watcher.stats.ticks + c!.watcher.stats.ticks, 0, 'no tick ran: the change was pushed over pub/sub')
  t.equal(upstream.calls.length, 2)
})

t.test('SSE Last-Event-ID resume on another replica sends only what the client does not have', async (t) => {
  const { apps: [a, b], upstream, clock } = await cluster(t, { watch: { intervalMs: 3_600_000 } }, { count: 2 })
  upstream.add({ id: '99', status: 'IN_PROGRESS', progress: '20%' })
  const sockets = new Set<Socket>()
  for (const app of [a!, b!]) {
    app.server.on('connection', (socket: Socket) => { sockets.add(socket); socket.once('close', () => sockets.delete(socket)) })
  }
  const [baseA, baseB] = [await a!.listen({ port: 0, host: '127.0.0.1' }), await b!.listen({ port: 0, host: '127.0.0.1' })]
  const readers: SseReader[] = []
  t.teardown(() => { for (const r of readers) r.abort(); for (const s of sockets) s.destroy() })

  const first = await SseReader.open(`${baseA}/v1/tasks/stream?ids=99`)
  readers.push(first)
  await waitFor(() => first.tasks.length === 1, 'the first state on A')
  first.abort()

  const resumed = await SseReader.open(`${baseB}/v1/tasks/stream?ids=99`, { 'last-event-id': first.lastId! })
  readers.push(resumed)
  await waitFor(() => resumed.frames.some((f) => f.comment === 'stream open'), 'B\'s stream to open')
  clock.advance(3_000)
  upstream.tasks.get('99')!.progress = '70%'
  await get(a!, '/v1/tasks/99')
  await waitFor(() => resumed.tasks.length === 1, 'the change on B')
  t.strictSame(resumed.tasks.map((task) => task.progress), ['70%'], 'the state the client had is not sent again; the change is')
  t.equal(upstream.calls.length, 2, 'B\'s resume read L2')
})
