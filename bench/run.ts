/**
 * `npm run bench`: the gateway measured against its anchors, side by side, in
 * one run. Every system under test runs in its own child process (see
 * harness.ts and servers/), autocannon and the other clients run here, and the
 * upstream is yet another process that counts its own calls. Absolute numbers
 * on a shared machine drift between runs, so every figure that has a target is
 * a ratio or difference against a named baseline measured in the same run,
 * interleaved round by round, and reported as the median of the rounds.
 *
 *   npm run bench                      full run, writes bench/results/latest.json
 *   npm run bench -- --quick           smoke mode, seconds
 *   --json-out <file>                  write the report there instead
 *   --rounds <n>                       rounds per scenario
 *   --batch-window-ms <n>, --batch-max-in-flight <n>   gateway batch settings to try
 *   --only cache-hit,burst,lone,load,memory,replicas     a subset, for experiments
 *   --gateway-options '<json>'                           any other gateway options to try
 */
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import type { GatewayOptions } from '../src/config.js'
import { BENCH_KEY, killAll, log, ROOT, startServers, stopAll } from './harness.js'
import { buildReport, summary, table, writeReport, type BenchReport, type ScenarioResult } from './report.js'
import { burst } from './scenarios/burst.js'
import { cacheHit } from './scenarios/cache-hit.js'
import { load } from './scenarios/load.js'
import { lone } from './scenarios/lone.js'
import { memory } from './scenarios/memory.js'
import { replicas } from './scenarios/replicas.js'
import { SETTINGS_FULL, SETTINGS_QUICK, type Scenario, type Settings } from './settings.js'

/** In report order; test/bench/run.test.ts checks the ids come out in this order. */
const SCENARIOS: readonly Scenario[] = [cacheHit, burst, lone, load, memory, replicas]

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      'json-out': { type: 'string' },
      rounds: { type: 'string' },
      'batch-window-ms': { type: 'string' },
      'batch-max-in-flight': { type: 'string' },
      only: { type: 'string' },
      'gateway-options': { type: 'string' }
    }
  })
  const only = new Set((values.only ?? SCENARIOS.map((sc) => sc.name).join(',')).split(','))
  const quick = values.quick === true
  const cfg: Settings = { ...(quick ? SETTINGS_QUICK : SETTINGS_FULL) }
  if (values.rounds !== undefined) cfg.rounds = Math.max(1, Number(values.rounds))
  const batch: Record<string, number> = {}
  if (values['batch-window-ms'] !== undefined) batch.windowMs = Number(values['batch-window-ms'])
  if (values['batch-max-in-flight'] !== undefined) batch.maxInFlight = Number(values['batch-max-in-flight'])

  // Bounded: a wedged run ends instead of hanging a terminal or CI job.
  const watchdog = setTimeout(() => {
    log('bench: watchdog expired, giving up')
    killAll()
    process.exit(2)
  }, quick ? 120_000 : 900_000)
  watchdog.unref()

  const startedAt = new Date()
  const command = 'npm run bench' + (process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : '')
  log(`bench: ${command}`)
  let report: BenchReport
  try {
    const extra = JSON.parse(values['gateway-options'] ?? '{}') as GatewayOptions
    const { servers, gatewayOptions } = await startServers((upstreamUrl) =>
      ({ ...extra, upstream: { ...extra.upstream, baseUrl: upstreamUrl, key: BENCH_KEY }, batch: { ...extra.batch, ...batch } }))
    const scenarios: ScenarioResult[] = []
    for (const [i, scenario] of SCENARIOS.entries()) {
      if (!only.has(scenario.name)) continue
      log(`${i + 1}. ${scenario.label}`)
      scenarios.push(...await scenario.run(servers, cfg))
    }
    report = buildReport({ quick, command, startedAt, gatewayOptions, scenarios })
  } finally {
    await stopAll()
  }

  const out = values['json-out'] ?? join(ROOT, 'bench/results', quick ? 'quick.json' : 'latest.json')
  const paths = [out]
  // A full run to the default place also keeps a timestamped copy, so runs can be diffed.
  if (values['json-out'] === undefined && !quick) paths.push(join(ROOT, 'bench/results', `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`))
  writeReport(report, paths)
  console.log(table(report))
  console.log(summary(report))
  log(`bench: report written to ${relative(process.cwd(), out)}`)
  clearTimeout(watchdog)
}

await main()
