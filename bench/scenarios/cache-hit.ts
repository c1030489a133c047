import { cannon, checkClean, log, type Child, type Servers } from '../harness.js'
import { median, round, target, type ScenarioResult } from '../report.js'
import type { Scenario, Settings } from '../settings.js'
import { graphqlHit } from './cache-hit-graphql.js'
import { restHit } from './cache-hit-rest.js'
import { graphqlList, repeatedOperation, restList } from './cache-hit-lists.js'

/** One way of reading the cached task, and the bare server it is held against. */
export interface Surface {
  id: string
  title: string
  anchor: (s: Servers) => Child
  request: { method: 'GET' | 'POST', path: string, body?: string, headers?: Record<string, string> }
}

/**
 * 1. The CPU a cache hit costs the gateway. The surfaces share their rounds
 * (REST anchor, REST gateway, GraphQL anchor, GraphQL gateway, ...) so that
 * drift on the machine lands on both sides of every ratio alike.
 */
export const cacheHit: Scenario = {
  name: 'cache-hit',
  label: 'cache-hit cost',
  run: (s, cfg) => measureHits([restHit, graphqlHit, restList, graphqlList, repeatedOperation], s, cfg)
}

async function measureHits (surfaces: readonly Surface[], s: Servers, cfg: Settings): Promise<ScenarioResult[]> {
  // Same answer on both sides, and the gateway's comes from its cache.
  for (const surface of surfaces) {
    const answers: string[] = []
    for (const server of [surface.anchor(s), s.gateway, s.gateway]) {
      const res = await fetch(server.url + surface.request.path, { method: surface.request.method, body: surface.request.body, headers: surface.request.headers })
      if (res.status !== 200) throw new Error(`${surface.id}: ${server.name} answered ${res.status}`)
      answers.push(JSON.stringify(await res.json()))
    }
    if (new Set(answers).size !== 1) throw new Error(`${surface.id}: the gateway and ${surface.anchor(s).name} answer differently`)
  }
  const before = await s.upstream.call<{ calls: number }>('stats')

  const measure = async (server: Child, surface: Surface, seconds: number): Promise<{ cpuUs: number, rps: number }> => {
    const { method, path, body, headers } = surface.request
    const { cpuUs, result } = await server.cpuDuring(() => cannon({ url: server.url + path, duration: seconds, method, body, headers }))
    checkClean(`${surface.id} on ${server.name}`, result)
    return { cpuUs: cpuUs / result['2xx'], rps: result['2xx'] / result.duration }
  }
  // Warm-up: JIT of V8 and of mercurius (which compiles a query after its first run), connections, caches.
  for (const surface of surfaces) {
    await measure(surface.anchor(s), surface, cfg.warmupSeconds)
    await measure(s.gateway, surface, cfg.warmupSeconds)
  }

  const rows = new Map(surfaces.map((surface) => [surface.id, [] as Array<Record<string, number>>]))
  for (let r = 0; r < cfg.rounds; r++) {
    for (const surface of surfaces) {
      const anchor = surface.anchor(s)
      const base = await measure(anchor, surface, cfg.hitSeconds)
      const gw = await measure(s.gateway, surface, cfg.hitSeconds)
      rows.get(surface.id)!.push({ baselineCpuUs: round(base.cpuUs), gatewayCpuUs: round(gw.cpuUs), baselineRps: Math.round(base.rps), gatewayRps: Math.round(gw.rps) })
      log(`  ${surface.id} round ${r + 1}: ${anchor.name} ${base.cpuUs.toFixed(1)} µs, gateway ${gw.cpuUs.toFixed(1)} µs`)
    }
  }
  const after = await s.upstream.call<{ calls: number }>('stats')
  if (after.calls !== before.calls) throw new Error(`cache hit: upstream was called ${after.calls - before.calls} times; the cache did not hold`)

  return surfaces.map((surface) => {
    const anchor = surface.anchor(s).name
    const rounds = rows.get(surface.id)!
    const baseline = median(rounds.map((x) => x.baselineCpuUs!))
    const gateway = median(rounds.map((x) => x.gatewayCpuUs!))
    const ratio = baseline / gateway
    return {
      id: surface.id,
      title: surface.title,
      unit: 'µs CPU/req',
      baselineName: anchor,
      baseline: round(baseline, 2),
      gateway: round(gateway, 2),
      value: round(ratio),
      // A hit should cost no more than the bare server returning the same object (issue #15).
      targets: [target(`${anchor} ÷ gateway`, '>=', 1.0, ratio)],
      params: { connections: 10, seconds: cfg.hitSeconds, anchor },
      rounds
    }
  })
}
