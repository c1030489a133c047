import { Redis } from 'ioredis'
import { Pool } from 'undici'
import { Child, log, RedisProcess } from '../harness.js'
import { BASELINES, median, round, target, type ScenarioResult } from '../report.js'
import type { Scenario, Settings } from '../settings.js'
import { NODE_FLAGS } from '../../src/process-tuning.js'

/** Deterministic ids, so every round and both setups send the same sequence of repeats. */
function sequence (count: number, pool: number, seed: number): number[] {
  let s = seed >>> 0
  return Array.from({ length: count }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s % pool
  })
}

function percentile (values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

/** Every replica connected to Redis and listening for announcements, before anything is measured. */
async function connected (replicas: readonly Child[], url: string): Promise<void> {
  const client = new Redis(url)
  try {
    for (let i = 0; ; i++) {
      const ready = await Promise.all(replicas.map(async (child) => (await (await fetch(`${child.url}/readyz`)).json() as { redis?: string }).redis))
      const channels = await client.pubsub('CHANNELS', 'mjgw:tasks:*') as string[]
      const counts = channels.length === 0 ? [] : await client.pubsub('NUMSUB', ...channels) as Array<string | number>
      const listening = counts.filter((_, k) => k % 2 === 1).reduce<number>((n, c) => n + Number(c), 0)
      if (ready.every((state) => state === 'up') && listening >= replicas.length) return
      if (i > 400) throw new Error('the replicas did not connect to Redis within 10 s')
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  } finally {
    client.disconnect()
  }
}

interface Run { calls: number, ids: number, p50Ms: number, p99Ms: number }

/** What N replicas without a shared tier would fetch: each its own distinct ids (every task is final, so cached for the run). */
function unsharedFetches (cfg: Settings, seed: number, replicas: number): number {
  return new Set(sequence(cfg.replicasRequests, cfg.replicasIds, seed).map((id, i) => `${i % replicas}:${id}`)).size
}

/**
 * The workload, steady traffic as a balancer spreads it: `replicasRequests`
 * lookups sent one every `replicasIntervalMs` whatever the answers (open
 * loop), each for an id drawn with repeats from `replicasIds`, lookup i to
 * target i mod N: the one gateway, or each of three replicas in turn.
 */
async function workload (targets: readonly Child[], upstream: Child, cfg: Settings, prefix: string, seed: number): Promise<Run> {
  const order = sequence(cfg.replicasRequests, cfg.replicasIds, seed)
  const pools = targets.map((child) => new Pool(child.url, { connections: 32, pipelining: 1 }))
  await upstream.call('reset')
  const latencies: number[] = []
  const sent: Array<Promise<void>> = []
  const started = performance.now()
  try {
    for (let i = 0; i < order.length; i++) {
      const due = started + i * cfg.replicasIntervalMs
      const wait = due - performance.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      const pool = pools[i % pools.length]!
      const at = performance.now()
      sent.push(pool.request({ method: 'GET', path: `/v1/tasks/${prefix}${String(order[i]).padStart(9, '0')}` }).then(async (res) => {
        await res.body.dump()
        latencies.push(performance.now() - at)
        if (res.statusCode !== 200) throw new Error(`replicas: a lookup answered ${res.statusCode}`)
      }))
    }
    await Promise.all(sent)
  } finally {
    await Promise.allSettled(sent)
    await Promise.all(pools.map((pool) => pool.close()))
  }
  const { calls, ids } = await upstream.call<{ calls: number, ids: number }>('stats')
  return { calls, ids, p50Ms: round(percentile(latencies, 0.5)), p99Ms: round(percentile(latencies, 0.99)) }
}

/**
 * What reading L2 adds to a lookup: the same task read on a second replica
 * (an L2 hit: L1 miss, one Redis round trip) and then again there (an L1
 * hit), one pair at a time, over fresh ids.
 */
async function l2HitCost (replicas: readonly Child[], cfg: Settings, r: number): Promise<{ l2Ms: number, l1Ms: number }> {
  const [first, second] = replicas.map((child) => new Pool(child.url, { connections: 1, pipelining: 1 }))
  const timed = async (pool: Pool, path: string, cache: string): Promise<number> => {
    const started = performance.now()
    const res = await pool.request({ method: 'GET', path })
    await res.body.dump()
    const ms = performance.now() - started
    if (res.statusCode !== 200 || res.headers['x-cache'] !== cache) throw new Error(`replicas: ${pool === first ? 'first' : 'second'} ${path} answered ${res.statusCode}, x-cache ${String(res.headers['x-cache'])}; expected ${cache}`)
    return ms
  }
  const l2: number[] = []
  const l1: number[] = []
  try {
    for (let i = 0; i < cfg.l2HitRequests; i++) {
      const path = `/v1/tasks/4${String(r).padStart(3, '0')}${String(i).padStart(9, '0')}`
      await timed(first!, path, 'miss')
      // A second read there gives the holder's write to L2 (not awaited by the first answer) time to land.
      await timed(first!, path, 'hit')
      l2.push(await timed(second!, path, 'hit'))
      l1.push(await timed(second!, path, 'hit'))
    }
  } finally {
    await first!.close()
    await second!.close()
  }
  return { l2Ms: median(l2), l1Ms: median(l1) }
}

/**
 * 6. Replicas sharing one Redis: the same traffic through one gateway
 * (without Redis) and through three gateways sharing a redis-server, both
 * against the counting upstream, interleaved round by round. Reports the
 * upstream calls of each and their ratio, the ids fetched (a repeat is an id
 * fetched again), the p99 of the three, and what an L2 hit adds over an L1 hit.
 * The traffic is steady rather than saturating: under saturation each
 * process's batcher merges its own lookups into calls, so calls grow with the
 * number of processes even when no id is fetched twice (the ids row shows that).
 */
export const replicas: Scenario = {
  name: 'replicas',
  label: 'replicas (one Redis, three gateways)',
  async run (s, cfg) {
    const redis = await RedisProcess.start()
    const three = await Promise.all([1, 2, 3].map((n) => Child.start(`gateway replica ${n}`, 'gateway.ts', { ...s.gatewayOptions, redis: { url: redis.url } }, NODE_FLAGS)))
    try {
      await connected(three, redis.url)

      await s.upstream.call('latency', cfg.replicasLatencyMs)
      // Warm-up: fresh processes (JIT, upstream connections, Redis scripts) on both sides, on ids of their own.
      const warm = { ...cfg, replicasRequests: Math.min(cfg.replicasRequests, 120) }
      await workload([s.gateway], s.upstream, warm, '800', 0)
      await workload(three, s.upstream, warm, '800', 0)
      const rounds: Array<Record<string, number>> = []
      for (let r = 0; r < cfg.rounds; r++) {
        const one = await workload([s.gateway], s.upstream, cfg, `81${r}`, r + 1)
        const many = await workload(three, s.upstream, cfg, `82${r}`, r + 1)
        rounds.push({
          oneCalls: one.calls,
          threeCalls: many.calls,
          callsRatio: round(many.calls / one.calls),
          idsRatio: round(many.ids / one.ids),
          oneIds: one.ids,
          threeIds: many.ids,
          threeUnsharedIds: unsharedFetches(cfg, r + 1, 3),
          oneP50Ms: one.p50Ms,
          threeP50Ms: many.p50Ms,
          oneP99Ms: one.p99Ms,
          threeP99Ms: many.p99Ms
        })
        log(`  replicas round ${r + 1}: one replica ${one.calls} calls (${one.ids} ids, p99 ${one.p99Ms} ms), three ${many.calls} calls (${many.ids} ids, p99 ${many.p99Ms} ms; ${rounds.at(-1)!.threeUnsharedIds} ids without sharing)`)
      }
      await s.upstream.call('latency', 0)
      const hits: Array<Record<string, number>> = []
      for (let r = 0; r < cfg.rounds; r++) {
        const { l2Ms, l1Ms } = await l2HitCost(three, cfg, r)
        hits.push({ l1Ms: round(l1Ms), l2Ms: round(l2Ms), addedMs: round(l2Ms - l1Ms) })
        log(`  replicas L2 hit round ${r + 1}: L1 hit ${l1Ms.toFixed(3)} ms, L2 hit ${l2Ms.toFixed(3)} ms`)
      }

      const params = { requests: cfg.replicasRequests, ids: cfg.replicasIds, intervalMs: cfg.replicasIntervalMs, upstreamLatencyMs: cfg.replicasLatencyMs, replicas: 3 }
      const ratio = median(rounds.map((x) => x.callsRatio!))
      const idsRatio = median(rounds.map((x) => x.idsRatio!))
      const p99 = median(rounds.map((x) => x.threeP99Ms!))
      const added = median(hits.map((x) => x.addedMs!))
      const results: ScenarioResult[] = [{
        id: 'replicas-calls',
        title: 'Three replicas sharing one Redis against one replica, same traffic: upstream calls',
        unit: 'upstream calls',
        baselineName: BASELINES.oneReplica,
        baseline: median(rounds.map((x) => x.oneCalls!)),
        gateway: median(rounds.map((x) => x.threeCalls!)),
        value: round(ratio),
        targets: [target(`three replicas ÷ ${BASELINES.oneReplica} upstream calls`, '<=', 1.2, ratio)],
        params,
        rounds
      }, {
        id: 'replicas-fetches',
        title: 'Three replicas sharing one Redis against one replica, same traffic: ids asked of upstream (repeated fetches)',
        unit: 'ids',
        baselineName: BASELINES.oneReplica,
        baseline: median(rounds.map((x) => x.oneIds!)),
        gateway: median(rounds.map((x) => x.threeIds!)),
        value: round(idsRatio),
        targets: [target(`three replicas ÷ ${BASELINES.oneReplica} ids fetched`, '<=', 1.2, idsRatio)],
        params,
        rounds
      }, {
        id: 'replicas-p99',
        title: `Three replicas sharing one Redis, ${cfg.replicasLatencyMs} ms upstream: p99 lookup latency`,
        unit: 'ms',
        baselineName: BASELINES.oneReplica,
        baseline: median(rounds.map((x) => x.oneP99Ms!)),
        gateway: round(p99),
        value: round(p99),
        targets: [target('three replicas p99 ms', '<=', 99, p99)],
        params,
        rounds
      }, {
        id: 'replicas-l2-hit',
        title: 'L2 hit (L1 miss, read from Redis) against an L1 hit: added median latency',
        unit: 'ms',
        baselineName: BASELINES.l1Hit,
        baseline: round(median(hits.map((x) => x.l1Ms!))),
        gateway: round(median(hits.map((x) => x.l2Ms!))),
        value: round(added),
        targets: [target('added ms', '<=', 1, added)],
        params: { requests: cfg.l2HitRequests, upstreamLatencyMs: 0 },
        rounds: hits
      }]
      return results
    } finally {
      await s.upstream.call('latency', 0)
      await Promise.allSettled(three.map((child) => child.close()))
      await redis.stop()
    }
  }
}
