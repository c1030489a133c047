import { Pool } from 'undici'
import { log } from '../harness.js'
import { BASELINES, round, target } from '../report.js'
import type { Scenario } from '../settings.js'

/** 5. Peak RSS while a stream of distinct ids goes through a default-bounded cache. */
export const memory: Scenario = {
  name: 'memory',
  label: 'memory',
  async run (s, cfg) {
    const requests = Math.ceil(cfg.memoryIds / cfg.memoryIdsPerRequest)
    const pool = new Pool(s.memoryGateway.url, { connections: cfg.memoryConcurrency, pipelining: 1 })
    const start = await s.memoryGateway.call<{ rss: number }>('memory')
    await s.memoryGateway.call('sampleStart')
    const started = performance.now()
    let next = 0
    try {
      await Promise.all(Array.from({ length: cfg.memoryConcurrency }, async () => {
        for (let i = next++; i < requests; i = next++) {
          const ids = Array.from({ length: cfg.memoryIdsPerRequest }, (_, k) => `9${String(i * cfg.memoryIdsPerRequest + k).padStart(12, '0')}`)
          const res = await pool.request({ method: 'POST', path: '/v1/tasks', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids }) })
          await res.body.dump()
          if (res.statusCode !== 200) throw new Error(`memory: POST /v1/tasks answered ${res.statusCode}`)
        }
      }))
    } finally {
      await pool.close()
    }
    const seconds = (performance.now() - started) / 1000
    const peak = await s.memoryGateway.call<number>('sampleStop')
    const end = await s.memoryGateway.call<{ rss: number, maxRss: number, heapUsed: number }>('memory')
    const { cacheEntries } = await s.memoryGateway.call<{ cacheEntries: number }>('gateway')
    const mb = (bytes: number): number => round(bytes / 2 ** 20, 1)
    // The sampler can miss a short spike between two ticks; the kernel's high-water mark cannot.
    const peakMb = mb(Math.max(peak, end.maxRss))
    log(`  memory: peak RSS ${peakMb} MB, ${cacheEntries} cache entries, ${seconds.toFixed(1)} s`)
    return [{
      id: 'memory',
      title: `Memory: ${cfg.memoryIds} distinct ids through the default cache bound`,
      unit: 'MB RSS',
      baselineName: BASELINES.memory,
      baseline: mb(start.rss),
      gateway: peakMb,
      value: peakMb,
      // Issue #15: 100k distinct ids through the default settings peak at 180 MB at most.
      targets: [target('peak RSS MB', '<=', 180, peakMb)],
      params: { ids: cfg.memoryIds, idsPerRequest: cfg.memoryIdsPerRequest, concurrency: cfg.memoryConcurrency },
      rounds: [{ startRssMb: mb(start.rss), peakSampledRssMb: mb(peak), maxRssMb: mb(end.maxRss), endHeapUsedMb: mb(end.heapUsed), cacheEntries, seconds: round(seconds, 2) }]
    }]
  }
}
