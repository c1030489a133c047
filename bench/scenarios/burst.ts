import { Pool } from 'undici'
import { log } from '../harness.js'
import { median, round, target } from '../report.js'
import type { Scenario } from '../settings.js'

/** Deterministic shuffle, so every run sends the burst in the same order. */
function shuffle<T> (items: T[], seed: number): T[] {
  let s = seed >>> 0
  for (let i = items.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    const j = s % (i + 1)
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}

/** 2. Separate single-id requests arriving at once, merged into few upstream calls. No anchor: the target is a count. */
export const burst: Scenario = {
  name: 'burst',
  label: 'burst merge',
  async run (s, cfg) {
    const pool = new Pool(s.gateway.url, { connections: cfg.burstRequests, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 })
    try {
      // Open every connection first, so the burst is requests, not TCP handshakes.
      await Promise.all(Array.from({ length: cfg.burstRequests }, () =>
        pool.request({ method: 'GET', path: '/healthz' }).then((res) => res.body.dump())))
      const connected = pool.stats.connected
      await s.upstream.call('latency', cfg.burstLatencyMs)
      const rounds: Array<Record<string, number>> = []
      for (let r = 0; r < cfg.rounds; r++) {
        const ids = Array.from({ length: cfg.burstIds }, (_, i) => `7${String(r).padStart(3, '0')}${String(i).padStart(9, '0')}`)
        const sent = shuffle(Array.from({ length: cfg.burstRequests }, (_, i) => ids[i % ids.length]!), r + 1)
        await s.upstream.call('reset')
        const started = performance.now()
        const statuses = await Promise.all(sent.map((id) => pool.request({ method: 'GET', path: `/v1/tasks/${id}` })
          .then(async (res) => { await res.body.dump(); return res.statusCode })))
        const ms = performance.now() - started
        if (statuses.some((code) => code !== 200)) throw new Error(`burst: ${statuses.filter((c) => c !== 200).length} requests failed`)
        const { calls, ids: upstreamIds } = await s.upstream.call<{ calls: number, ids: number }>('stats')
        rounds.push({ upstreamCalls: calls, upstreamIds, ms: round(ms, 1) })
        log(`  burst round ${r + 1}: ${calls} upstream calls for ${upstreamIds} ids, ${ms.toFixed(1)} ms`)
      }
      const calls = median(rounds.map((x) => x.upstreamCalls!))
      return [{
        id: 'burst',
        title: `Burst: ${cfg.burstRequests} concurrent single-id requests over ${cfg.burstIds} ids`,
        unit: 'upstream calls',
        baselineName: null,
        baseline: null,
        gateway: calls,
        value: calls,
        targets: [target('upstream calls', '<=', 12, calls)],
        params: { requests: cfg.burstRequests, ids: cfg.burstIds, connections: connected, upstreamLatencyMs: cfg.burstLatencyMs },
        rounds
      }]
    } finally {
      await s.upstream.call('latency', 0)
      await pool.close()
    }
  }
}
