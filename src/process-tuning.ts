import { setFlagsFromString } from 'node:v8'
import type { GatewayConfig } from './config.js'

/**
 * Process-wide V8 settings, applied once by src/server.ts before the app is
 * built (and by the benchmark's gateway, which must measure what runs).
 *
 * `--optimize-for-size` makes V8 grow the heap in small steps. The gateway's
 * steady state is a bounded cache plus short-lived request garbage, and
 * evicted cache entries become old-generation garbage: with V8's default
 * growth the heap runs to several times the live set before a full
 * collection (about 300 MB peak RSS for 100k distinct ids through the default
 * cache, where 60 MB are live). Growing in small steps keeps the peak near
 * 160 MB for a small CPU cost, measured by `npm run bench`.
 */
export function tuneProcess (config: Pick<GatewayConfig, 'memory'>, setFlags: (flags: string) => void = setFlagsFromString): void {
  if (config.memory.optimizeForSize) setFlags('--optimize-for-size')
}
