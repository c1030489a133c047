import { setFlagsFromString } from 'node:v8'
import type { GatewayConfig } from './config.js'

/**
 * V8 flags fixed when V8 starts, so they are on the command line: `npm start`,
 * the Docker image and the benchmark's gateway all pass these (checked by
 * test/process-tuning.test.ts). A young generation of 8 MB per semi-space
 * (V8's default here is 16) keeps about 20 MB off the peak under a stream of
 * distinct ids; 4 MB saved more but made the CPU of a cache hit vary by up to
 * 20% from one process to the next (bench/README.md, "Memory").
 */
export const NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=8'])

/** The start-up flags this process lacks, read from its command line and NODE_OPTIONS. */
export function missingNodeFlags (execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)])
  return NODE_FLAGS.filter((flag) => !given.has(flag))
}

/**
 * V8 settings that can change at run time, applied once by src/server.ts
 * before the app is built (and by the benchmark's gateway, which must measure
 * what runs).
 *
 * The gateway's steady state is a bounded cache plus short-lived request
 * garbage, and evicted cache entries become old-generation garbage. V8's
 * dynamic growth lets the heap reach several times the live set while
 * allocation is fast: about 300 MB peak RSS for 100k distinct ids through
 * the default cache, where 60 MB are live. A fixed growth of
 * MEMORY_HEAP_GROWTH_PERCENT keeps that near 170 MB. `--optimize-for-size`
 * did as well on memory, but cost a cache hit 5–20% more CPU.
 */
export function tuneProcess (config: Pick<GatewayConfig, 'memory'>, setFlags: (flags: string) => void = setFlagsFromString): void {
  const percent = config.memory.heapGrowthPercent
  if (percent > 0) setFlags(`--heap-growing-percent=${percent}`)
}
