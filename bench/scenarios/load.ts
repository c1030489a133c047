import type autocannon from 'autocannon'
import { BENCH_KEY, cannon, checkClean, log } from '../harness.js'
import { BASELINES, median, round, target } from '../report.js'
import type { Scenario } from '../settings.js'

/**
 * 4. Sustained load, cache off, a new id every request: few upstream calls,
 * and most of the throughput the same load gets straight from upstream.
 */
export const load: Scenario = {
  name: 'load',
  label: 'load',
  async run (s, cfg) {
    await s.upstream.call('latency', cfg.loadLatencyMs)
    let n = 0
    const nextId = (): string => `3${String(n++).padStart(12, '0')}`
    const viaGateway = (seconds: number): Promise<autocannon.Result> => cannon({
      url: s.loadGateway.url,
      connections: cfg.loadConnections,
      duration: seconds,
      requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/v1/tasks/${nextId()}` }) }]
    })
    const direct = (seconds: number): Promise<autocannon.Result> => cannon({
      url: s.upstream.url,
      connections: cfg.loadConnections,
      duration: seconds,
      requests: [{
        method: 'POST',
        path: '/mj/task/list-by-condition',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_KEY}` },
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ ids: [nextId()] }) })
      }]
    })
    try {
      checkClean(`load warm-up, ${BASELINES.upstream}`, await direct(cfg.warmupSeconds))
      checkClean('load warm-up, gateway', await viaGateway(cfg.warmupSeconds))
      const rounds: Array<Record<string, number>> = []
      for (let r = 0; r < cfg.rounds; r++) {
        const d = await direct(cfg.loadSeconds)
        checkClean(`load, ${BASELINES.upstream}`, d)
        await s.upstream.call('reset')
        const g = await viaGateway(cfg.loadSeconds)
        checkClean('load, gateway', g)
        // Let calls still in flight at the end land before counting.
        await new Promise((resolve) => setTimeout(resolve, cfg.loadLatencyMs * 4))
        const { calls } = await s.upstream.call<{ calls: number }>('stats')
        const directRps = d['2xx'] / d.duration
        const gatewayRps = g['2xx'] / g.duration
        rounds.push({
          directRps: Math.round(directRps),
          gatewayRps: Math.round(gatewayRps),
          throughputRatio: round(gatewayRps / directRps),
          upstreamCalls: calls,
          gatewayRequests: g['2xx'],
          callsPerRequest: round(calls / g['2xx'], 4),
          gatewayP50Ms: g.latency.p50,
          directP50Ms: d.latency.p50
        })
        log(`  load round ${r + 1}: ${BASELINES.upstream} ${directRps.toFixed(0)} req/s, gateway ${gatewayRps.toFixed(0)} req/s, ${calls} upstream calls for ${g['2xx']} requests`)
      }
      const directRps = median(rounds.map((x) => x.directRps!))
      const gatewayRps = median(rounds.map((x) => x.gatewayRps!))
      const ratio = median(rounds.map((x) => x.throughputRatio!))
      const perRequest = median(rounds.map((x) => x.callsPerRequest!))
      const params = { connections: cfg.loadConnections, seconds: cfg.loadSeconds, upstreamLatencyMs: cfg.loadLatencyMs, cache: 'off' }
      const title = `Load (${cfg.loadConnections} connections, cache off, new id per request)`
      return [{
        id: 'load-calls',
        title: `${title}: upstream calls per request`,
        unit: 'calls/req',
        // Straight to upstream, every request is one call.
        baselineName: BASELINES.upstream,
        baseline: 1,
        gateway: round(perRequest, 4),
        value: round(perRequest, 4),
        targets: [target('upstream calls per request', '<=', 0.05, perRequest)],
        params,
        rounds
      }, {
        id: 'load-throughput',
        title: `${title}: throughput against ${BASELINES.upstream}`,
        unit: 'req/s',
        baselineName: BASELINES.upstream,
        baseline: directRps,
        gateway: gatewayRps,
        value: round(ratio),
        targets: [target(`gateway ÷ ${BASELINES.upstream} throughput`, '>=', 0.8, ratio)],
        params,
        rounds
      }]
    } finally {
      await s.upstream.call('latency', 0)
    }
  }
}
