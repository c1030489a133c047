import { Pool } from 'undici'
import { BENCH_KEY, log } from '../harness.js'
import { BASELINES, median, round, target } from '../report.js'
import type { Scenario } from '../settings.js'

/** 3. What a lone uncached request pays for going through the gateway, against the same call made straight to upstream. */
export const lone: Scenario = {
  name: 'lone',
  label: 'lone-request overhead',
  async run (s, cfg) {
    const gw = new Pool(s.gateway.url, { connections: 1, pipelining: 1 })
    const up = new Pool(s.upstream.url, { connections: 1, pipelining: 1 })
    const timed = async (pool: Pool, opts: Parameters<Pool['request']>[0]): Promise<number> => {
      const started = performance.now()
      const res = await pool.request(opts)
      await res.body.text()
      const ms = performance.now() - started
      if (res.statusCode !== 200) throw new Error(`lone request: ${opts.path} answered ${res.statusCode}`)
      return ms
    }
    let n = 0
    // Gateway then direct, one pair at a time, each on a fresh id so neither is a cache hit.
    const pair = async (): Promise<[number, number]> => {
      const id = `5${String(n++).padStart(12, '0')}`
      const g = await timed(gw, { method: 'GET', path: `/v1/tasks/${id}` })
      const d = await timed(up, {
        method: 'POST',
        path: '/mj/task/list-by-condition',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_KEY}` },
        body: JSON.stringify({ ids: [`6${id.slice(1)}`] })
      })
      return [g, d]
    }
    try {
      for (let i = 0; i < Math.min(50, cfg.loneRequests); i++) await pair()
      const rounds: Array<Record<string, number>> = []
      for (let r = 0; r < cfg.rounds; r++) {
        const g: number[] = []
        const d: number[] = []
        for (let i = 0; i < cfg.loneRequests; i++) {
          const [a, b] = await pair()
          g.push(a)
          d.push(b)
        }
        rounds.push({ gatewayMs: round(median(g)), directMs: round(median(d)), overheadMs: round(median(g) - median(d)) })
        log(`  lone round ${r + 1}: gateway ${median(g).toFixed(3)} ms, ${BASELINES.upstream} ${median(d).toFixed(3)} ms`)
      }
      const overhead = median(rounds.map((x) => x.overheadMs!))
      return [{
        id: 'lone',
        title: 'Lone uncached request: median latency over a direct upstream call',
        unit: 'ms',
        baselineName: BASELINES.upstream,
        baseline: round(median(rounds.map((x) => x.directMs!))),
        gateway: round(median(rounds.map((x) => x.gatewayMs!))),
        value: round(overhead),
        // Issue #15: a lone uncached request pays at most half a millisecond for the gateway.
        targets: [target('overhead ms', '<=', 0.5, overhead)],
        params: { requests: cfg.loneRequests, upstreamLatencyMs: 0 },
        rounds
      }]
    } finally {
      await gw.close()
      await up.close()
    }
  }
}
