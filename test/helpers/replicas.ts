import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { buildApp, type AppDeps } from '../../src/app.js'
import type { GatewayOptions } from '../../src/config.js'
import { FakeUpstream } from './fake-upstream.js'
import { ManualClock, TEST_KEY, waitFor } from './gateway.js'
import { startRedis, type RedisServer } from './redis.js'

type TestOptions = Omit<GatewayOptions, 'upstream'> & { upstream?: GatewayOptions['upstream'] }
type Teardown = { teardown: (fn: () => unknown) => void }

export interface Cluster {
  apps: FastifyInstance[]
  upstream: FakeUpstream
  redis: RedisServer
  clock: ManualClock
  /** A plain client on the same Redis, for looking inside. */
  client: Redis
  /** Resolves once every replica is connected and listening for announcements. */
  ready: () => Promise<void>
}

/** Waits for a condition that needs I/O (Redis, sockets); fails with `what` after ~5 s instead of hanging. */
export async function eventually (check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Connections subscribed to the gateway's announcement channels (any namespace). */
export async function announcementListeners (client: Redis, prefix = 'mjgw:'): Promise<number> {
  const channels = await client.pubsub('CHANNELS', `${prefix}tasks:*`) as string[]
  if (channels.length === 0) return 0
  const counts = await client.pubsub('NUMSUB', ...channels) as Array<string | number>
  let n = 0
  for (let i = 1; i < counts.length; i += 2) n += Number(counts[i])
  return n
}

/**
 * `count` gateways (buildApp, as tests build one) sharing one private
 * redis-server and one fake upstream, on one manual clock: replicas behind
 * a balancer, with the balancer being the test choosing an app per request.
 */
export async function cluster (t: Teardown, options: TestOptions = {}, extra: { count?: number, redis?: RedisServer, deps?: AppDeps } = {}): Promise<Cluster> {
  const redis = extra.redis ?? await startRedis(t)
  const upstream = await FakeUpstream.start()
  const clock = new ManualClock()
  const passthrough = options.upstream?.auth === 'passthrough'
  const apps: FastifyInstance[] = []
  for (let i = 0; i < (extra.count ?? 3); i++) {
    apps.push(await buildApp({
      ...options,
      upstream: { baseUrl: upstream.url, key: passthrough ? undefined : TEST_KEY, ...options.upstream },
      // A generous Redis deadline: a test machine under load must not turn a slow reply into a fallback fetch.
      redis: { url: redis.url, timeoutMs: 5_000, ...options.redis }
    }, { logger: false, now: clock.now, sleep: async () => {}, ...extra.deps }))
  }
  const client = new Redis(options.redis?.url ?? redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  t.teardown(async () => {
    client.disconnect()
    await Promise.all(apps.map((app) => app.close()))
    await upstream.close()
  })
  const ready = async (): Promise<void> => {
    await waitFor(() => apps.every((app) => app.redis?.state === 'up'), 'every replica to connect to Redis')
    await eventually(async () => await announcementListeners(client, options.redis?.prefix) >= apps.length, 'every replica to subscribe')
  }
  await client.connect()
  await ready()
  return { apps, upstream, redis, clock, client, ready }
}

/**
 * Resolves once `id`'s answer is in L2 and its lease released. A replica
 * writes L2 just after it answers its own client, so a test that asks
 * another replica next must wait for the write to expect an L2 hit (else it
 * may join the fetch instead: still one upstream call, but an `x-cache: miss`).
 */
export async function inL2 (cluster: Pick<Cluster, 'client'>, id: string, partition = 'shared', prefix = 'mjgw:'): Promise<void> {
  await eventually(async () => {
    const [entries, leases] = await Promise.all([
      cluster.client.keys(`${prefix}task:*:${partition}:${id}`),
      cluster.client.keys(`${prefix}lease:*:${partition}:${id}`)
    ])
    return entries.length > 0 && leases.length === 0
  }, `${id} to land in L2`)
}

/** The value of one sample of an app's /metrics, e.g. `gateway_shared_tier_up` or `name{label="x"}`. */
export async function metric (app: FastifyInstance, series: string, headers: Record<string, string> = {}): Promise<number | undefined> {
  const text = (await app.inject({ method: 'GET', url: '/metrics', headers })).body
  for (const line of text.split('\n')) {
    const space = line.lastIndexOf(' ')
    if (!line.startsWith('#') && line.slice(0, space) === series) return Number(line.slice(space + 1))
  }
  return undefined
}

/** Ids upstream was asked for, across every call, sorted. */
export function askedIds (upstream: FakeUpstream): string[] {
  return upstream.calls.flatMap((call) => call.ids).sort()
}
