/**
 * `npm run bench`: the gateway measured against its anchors, side by side, in
 * one run. Every system under test runs in its own child process (see
 * servers/), autocannon and the other clients run here, and the upstream is
 * yet another process that counts its own calls. Absolute numbers on a
 * shared machine drift between runs, so every figure that has a target is a
 * ratio or difference against a baseline measured in the same run,
 * interleaved round by round, and reported as the median of the rounds.
 *
 *   npm run bench                      full run, writes bench/results/latest.json
 *   npm run bench -- --quick           smoke mode, seconds
 *   --json-out <file>                  write the report there instead
 *   --rounds <n>                       rounds per scenario
 *   --batch-window-ms <n>, --batch-max-in-flight <n>   gateway batch settings to try
 *   --only cache-hit,burst,lone,load,memory              a subset, for experiments
 *   --gateway-options '<json>'                           any other gateway options to try
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { Pool } from 'undici'
import type { GatewayOptions } from '../src/config.js'
import { HIT_ID, HIT_QUERY } from './fixtures.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BENCH_KEY = 'sk-bench-key'

// ---------------------------------------------------------------- report shape

export interface TargetResult {
  readonly metric: string
  readonly op: '>=' | '<='
  readonly threshold: number
  readonly value: number
  readonly met: boolean
}

export interface ScenarioResult {
  readonly id: string
  readonly title: string
  readonly unit: string
  /** The anchor's median, in `unit`; null where there is no anchor. */
  readonly baseline: number | null
  /** The gateway's median, in `unit`. */
  readonly gateway: number
  /** What the targets are about: a ratio, a difference, a count. */
  readonly value: number
  readonly targets: readonly TargetResult[]
  readonly params: Readonly<Record<string, number | string>>
  readonly rounds: ReadonlyArray<Readonly<Record<string, number>>>
}

export interface BenchReport {
  readonly schema: 1
  readonly quick: boolean
  readonly command: string
  readonly startedAt: string
  readonly durationS: number
  readonly machine: Readonly<Record<string, string | number>>
  readonly upstream: string
  readonly gatewayOptions: GatewayOptions
  readonly scenarios: readonly ScenarioResult[]
  readonly allMet: boolean
}

// ---------------------------------------------------------------- helpers

function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

function round (value: number, digits = 3): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

function target (metric: string, op: '>=' | '<=', threshold: number, value: number): TargetResult {
  return { metric, op, threshold, value: round(value), met: op === '>=' ? value >= threshold : value <= threshold }
}

/** Deterministic shuffle, so every run sends the burst in the same order. */
function shuffle<T> (items: T[], seed: number): T[] {
  let s = seed >>> 0
  for (let i = items.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    const j = s % (i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}

function log (line: string): void {
  process.stderr.write(line + '\n')
}

interface CpuUsage { user: number, system: number }

/** One system under test in its own process, driven over IPC. */
class Child {
  static readonly all = new Set<Child>()
  #seq = 0
  readonly #pending = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()

  private constructor (readonly name: string, readonly proc: ChildProcess, readonly url: string) {
    proc.on('message', (msg: { id?: number, result?: unknown, error?: string }) => {
      const p = msg.id === undefined ? undefined : this.#pending.get(msg.id)
      if (p === undefined) return
      this.#pending.delete(msg.id!)
      if (msg.error !== undefined) p.reject(new Error(`${name}: ${msg.error}`))
      else p.resolve(msg.result)
    })
    proc.on('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`${name} exited (${code})`))
      this.#pending.clear()
    })
  }

  static start (name: string, file: string, args: object = {}): Promise<Child> {
    const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/servers', file)], {
      cwd: ROOT,
      env: { ...process.env, BENCH_ARGS: JSON.stringify(args) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`${name} did not start within 30 s`)) }, 30_000)
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited during start-up (${code})`)) })
      proc.once('message', (msg: { ready?: boolean, url?: string }) => {
        clearTimeout(timer)
        if (msg.ready !== true || msg.url === undefined) { reject(new Error(`${name}: unexpected first message`)); return }
        proc.removeAllListeners('exit')
        const child = new Child(name, proc, msg.url)
        Child.all.add(child)
        resolve(child)
      })
    })
  }

  call<T = unknown> (cmd: string, args?: unknown): Promise<T> {
    const id = ++this.#seq
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      this.proc.send({ id, cmd, args })
    })
  }

  /** CPU (user + system, µs) the process spent while `fn` ran. */
  async cpuDuring<T> (fn: () => Promise<T>): Promise<{ cpuUs: number, result: T }> {
    const before = await this.call<CpuUsage>('cpu')
    const result = await fn()
    const after = await this.call<CpuUsage>('cpu')
    return { cpuUs: after.user - before.user + after.system - before.system, result }
  }

  async close (): Promise<void> {
    Child.all.delete(this)
    if (this.proc.exitCode !== null) return
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()))
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000)
    this.call('close').catch(() => {})
    await exited
    clearTimeout(timer)
  }
}

async function cannon (opts: autocannon.Options): Promise<autocannon.Result> {
  return await autocannon({ connections: 10, pipelining: 1, timeout: 10, ...opts })
}

function checkClean (what: string, r: autocannon.Result): void {
  if (r.errors > 0 || r.non2xx > 0 || r['2xx'] === 0) {
    throw new Error(`${what}: ${r['2xx']} ok, ${r.non2xx} non-2xx, ${r.errors} errors`)
  }
}

// ---------------------------------------------------------------- scenarios

interface Settings {
  rounds: number
  hitSeconds: number
  warmupSeconds: number
  burstRequests: number
  burstIds: number
  burstLatencyMs: number
  loneRequests: number
  loadSeconds: number
  loadConnections: number
  loadLatencyMs: number
  memoryIds: number
  memoryIdsPerRequest: number
  memoryConcurrency: number
}

interface Servers {
  upstream: Child
  gateway: Child
  loadGateway: Child
  memoryGateway: Child
  rest: Child
  graphql: Child
}

interface Surface {
  id: string
  title: string
  baseline: Child
  request: { method: 'GET' | 'POST', path: string, body?: string, headers?: Record<string, string> }
}

/** 1. The CPU a cache hit costs the gateway, against bare Fastify and bare mercurius serving a Map. */
async function cacheHit (s: Servers, cfg: Settings): Promise<ScenarioResult[]> {
  const surfaces: Surface[] = [
    { id: 'cache-hit-rest', title: 'Cache hit, REST: CPU per request', baseline: s.rest, request: { method: 'GET', path: `/v1/tasks/${HIT_ID}` } },
    { id: 'cache-hit-graphql', title: 'Cache hit, GraphQL: CPU per request', baseline: s.graphql, request: { method: 'POST', path: '/graphql', body: HIT_QUERY, headers: { 'content-type': 'application/json' } } }
  ]
  // Same answer on both sides, and the gateway's comes from its cache.
  for (const surface of surfaces) {
    const answers: string[] = []
    for (const server of [surface.baseline, s.gateway, s.gateway]) {
      const res = await fetch(server.url + surface.request.path, { method: surface.request.method, body: surface.request.body, headers: surface.request.headers })
      if (res.status !== 200) throw new Error(`${surface.id}: ${server.name} answered ${res.status}`)
      answers.push(JSON.stringify(await res.json()))
    }
    if (new Set(answers).size !== 1) throw new Error(`${surface.id}: the gateway and its anchor answer differently`)
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
    await measure(surface.baseline, surface, cfg.warmupSeconds)
    await measure(s.gateway, surface, cfg.warmupSeconds)
  }

  const rows = new Map(surfaces.map((surface) => [surface.id, [] as Array<Record<string, number>>]))
  for (let r = 0; r < cfg.rounds; r++) {
    for (const surface of surfaces) {
      const base = await measure(surface.baseline, surface, cfg.hitSeconds)
      const gw = await measure(s.gateway, surface, cfg.hitSeconds)
      rows.get(surface.id)!.push({ baselineCpuUs: round(base.cpuUs), gatewayCpuUs: round(gw.cpuUs), baselineRps: Math.round(base.rps), gatewayRps: Math.round(gw.rps) })
      log(`  ${surface.id} round ${r + 1}: baseline ${base.cpuUs.toFixed(1)} µs, gateway ${gw.cpuUs.toFixed(1)} µs`)
    }
  }
  const after = await s.upstream.call<{ calls: number }>('stats')
  if (after.calls !== before.calls) throw new Error(`cache hit: upstream was called ${after.calls - before.calls} times; the cache did not hold`)

  return surfaces.map((surface) => {
    const rounds = rows.get(surface.id)!
    const baseline = median(rounds.map((x) => x.baselineCpuUs!))
    const gateway = median(rounds.map((x) => x.gatewayCpuUs!))
    const ratio = baseline / gateway
    return {
      id: surface.id,
      title: surface.title,
      unit: 'µs CPU/req',
      baseline: round(baseline, 2),
      gateway: round(gateway, 2),
      value: round(ratio),
      targets: [target('baseline ÷ gateway', '>=', 0.85, ratio)],
      params: { connections: 10, seconds: cfg.hitSeconds, anchor: surface.baseline.name },
      rounds
    }
  })
}

/** 2. Separate single-id requests arriving at once, merged into few upstream calls. */
async function burst (s: Servers, cfg: Settings): Promise<ScenarioResult> {
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
    return {
      id: 'burst',
      title: `Burst: ${cfg.burstRequests} concurrent single-id requests over ${cfg.burstIds} ids`,
      unit: 'upstream calls',
      baseline: null,
      gateway: calls,
      value: calls,
      targets: [target('upstream calls', '<=', 12, calls)],
      params: { requests: cfg.burstRequests, ids: cfg.burstIds, connections: connected, upstreamLatencyMs: cfg.burstLatencyMs },
      rounds
    }
  } finally {
    await s.upstream.call('latency', 0)
    await pool.close()
  }
}

/** 3. What a lone uncached request pays for going through the gateway. */
async function lone (s: Servers, cfg: Settings): Promise<ScenarioResult> {
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
      log(`  lone round ${r + 1}: gateway ${median(g).toFixed(3)} ms, direct ${median(d).toFixed(3)} ms`)
    }
    const overhead = median(rounds.map((x) => x.overheadMs!))
    return {
      id: 'lone',
      title: 'Lone uncached request: median latency over a direct upstream call',
      unit: 'ms',
      baseline: round(median(rounds.map((x) => x.directMs!))),
      gateway: round(median(rounds.map((x) => x.gatewayMs!))),
      value: round(overhead),
      targets: [target('overhead ms', '<=', 3, overhead)],
      params: { requests: cfg.loneRequests, upstreamLatencyMs: 0 },
      rounds
    }
  } finally {
    await gw.close()
    await up.close()
  }
}

/** 4. Sustained load, cache off, a new id every request: few upstream calls, most of upstream's throughput. */
async function load (s: Servers, cfg: Settings): Promise<ScenarioResult[]> {
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
    checkClean('load warm-up, direct', await direct(cfg.warmupSeconds))
    checkClean('load warm-up, gateway', await viaGateway(cfg.warmupSeconds))
    const rounds: Array<Record<string, number>> = []
    for (let r = 0; r < cfg.rounds; r++) {
      const d = await direct(cfg.loadSeconds)
      checkClean('load, direct', d)
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
      log(`  load round ${r + 1}: direct ${directRps.toFixed(0)} req/s, gateway ${gatewayRps.toFixed(0)} req/s, ${calls} upstream calls for ${g['2xx']} requests`)
    }
    const directRps = median(rounds.map((x) => x.directRps!))
    const gatewayRps = median(rounds.map((x) => x.gatewayRps!))
    const ratio = median(rounds.map((x) => x.throughputRatio!))
    const perRequest = median(rounds.map((x) => x.callsPerRequest!))
    const params = { connections: cfg.loadConnections, seconds: cfg.loadSeconds, upstreamLatencyMs: cfg.loadLatencyMs, cache: 'off' }
    return [{
      id: 'load-calls',
      title: `Load (${cfg.loadConnections} connections, cache off, new id per request): upstream calls per request`,
      unit: 'calls/req',
      baseline: 1,
      gateway: round(perRequest, 4),
      value: round(perRequest, 4),
      targets: [target('upstream calls per request', '<=', 0.05, perRequest)],
      params,
      rounds
    }, {
      id: 'load-throughput',
      title: `Load (${cfg.loadConnections} connections, cache off, new id per request): throughput against upstream direct`,
      unit: 'req/s',
      baseline: directRps,
      gateway: gatewayRps,
      value: round(ratio),
      targets: [target('gateway ÷ direct throughput', '>=', 0.8, ratio)],
      params,
      rounds
    }]
  } finally {
    await s.upstream.call('latency', 0)
  }
}

/** 5. Peak RSS while a stream of distinct ids goes through a default-bounded cache. */
async function memory (s: Servers, cfg: Settings): Promise<ScenarioResult> {
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
  const peakMb = mb(Math.max(peak, end.maxRss))
  log(`  memory: peak RSS ${peakMb} MB, ${cacheEntries} cache entries, ${seconds.toFixed(1)} s`)
  return {
    id: 'memory',
    title: `Memory: ${cfg.memoryIds} distinct ids through the default cache bound`,
    unit: 'MB RSS',
    baseline: mb(start.rss),
    gateway: peakMb,
    value: peakMb,
    targets: [],
    params: { ids: cfg.memoryIds, idsPerRequest: cfg.memoryIdsPerRequest, concurrency: cfg.memoryConcurrency },
    rounds: [{ startRssMb: mb(start.rss), peakSampledRssMb: mb(peak), maxRssMb: mb(end.maxRss), endHeapUsedMb: mb(end.heapUsed), cacheEntries, seconds: round(seconds, 2) }]
  }
}

// ---------------------------------------------------------------- table

function fmt (value: number | null, unit: string): string {
  if (value === null) return '–'
  return `${Number.isInteger(value) ? value : value.toFixed(value < 10 ? 3 : 1).replace(/\.?0+$/, '')} ${unit}`
}

export function table (report: BenchReport): string {
  const rows: string[][] = [['Scenario', 'Baseline', 'Gateway', 'Result', 'Target', 'Met']]
  for (const sc of report.scenarios) {
    const name = sc.id
    if (sc.targets.length === 0) {
      rows.push([name, `${fmt(sc.baseline, sc.unit)} at start`, `${fmt(sc.gateway, sc.unit)} peak`, fmt(sc.value, sc.unit), 'report', '–'])
      continue
    }
    for (const t of sc.targets) {
      rows.push([name, fmt(sc.baseline, sc.unit), fmt(sc.gateway, sc.unit), `${t.metric} = ${t.value}`, `${t.op === '>=' ? '≥' : '≤'} ${t.threshold}`,
        t.met ? 'yes' : `**MISSED** by ${round(Math.abs(t.value - t.threshold))}`])
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const line = (r: string[]): string => '| ' + r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ') + ' |'
  return [line(rows[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.slice(1).map(line)].join('\n')
}

// ---------------------------------------------------------------- main

const SETTINGS_FULL: Settings = {
  rounds: 5,
  hitSeconds: 3,
  warmupSeconds: 2,
  burstRequests: 150,
  burstIds: 120,
  burstLatencyMs: 25,
  loneRequests: 200,
  loadSeconds: 4,
  loadConnections: 64,
  loadLatencyMs: 25,
  memoryIds: 100_000,
  memoryIdsPerRequest: 100,
  memoryConcurrency: 8
}

const SETTINGS_QUICK: Settings = {
  ...SETTINGS_FULL,
  rounds: 1,
  hitSeconds: 0.5,
  warmupSeconds: 0.3,
  loneRequests: 20,
  loadSeconds: 0.5,
  memoryIds: 2_000
}

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
  const only = new Set((values.only ?? 'cache-hit,burst,lone,load,memory').split(','))
  const quick = values.quick === true
  const cfg: Settings = { ...(quick ? SETTINGS_QUICK : SETTINGS_FULL) }
  if (values.rounds !== undefined) cfg.rounds = Math.max(1, Number(values.rounds))
  const batch: Record<string, number> = {}
  if (values['batch-window-ms'] !== undefined) batch.windowMs = Number(values['batch-window-ms'])
  if (values['batch-max-in-flight'] !== undefined) batch.maxInFlight = Number(values['batch-max-in-flight'])

  // Bounded: a wedged run ends instead of hanging a terminal or CI job.
  const watchdog = setTimeout(() => {
    log('bench: watchdog expired, giving up')
    for (const child of Child.all) child.proc.kill('SIGKILL')
    process.exit(2)
  }, quick ? 120_000 : 900_000)
  watchdog.unref()

  const startedAt = new Date()
  const command = 'npm run bench' + (process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : '')
  log(`bench: ${command}`)
  let report: BenchReport
  try {
    const upstream = await Child.start('upstream', 'upstream.ts')
    const extra = JSON.parse(values['gateway-options'] ?? '{}') as GatewayOptions
    const gatewayOptions: GatewayOptions = { ...extra, upstream: { ...extra.upstream, baseUrl: upstream.url, key: BENCH_KEY }, batch: { ...extra.batch, ...batch } }
    const [gateway, loadGateway, memoryGateway, rest, graphql] = await Promise.all([
      Child.start('gateway', 'gateway.ts', gatewayOptions),
      Child.start('gateway (cache off)', 'gateway.ts', { ...gatewayOptions, cache: { ttlMs: 0 } }),
      Child.start('gateway (memory)', 'gateway.ts', gatewayOptions),
      Child.start('bare Fastify', 'rest-baseline.ts'),
      Child.start('bare mercurius', 'graphql-baseline.ts')
    ])
    const servers: Servers = { upstream, gateway, loadGateway, memoryGateway, rest, graphql }
    const scenarios: ScenarioResult[] = []
    if (only.has('cache-hit')) { log('1. cache-hit cost'); scenarios.push(...await cacheHit(servers, cfg)) }
    if (only.has('burst')) { log('2. burst merge'); scenarios.push(await burst(servers, cfg)) }
    if (only.has('lone')) { log('3. lone-request overhead'); scenarios.push(await lone(servers, cfg)) }
    if (only.has('load')) { log('4. load'); scenarios.push(...await load(servers, cfg)) }
    if (only.has('memory')) { log('5. memory'); scenarios.push(await memory(servers, cfg)) }
    const cpus = os.cpus()
    report = {
      schema: 1,
      quick,
      command,
      startedAt: startedAt.toISOString(),
      durationS: round((Date.now() - startedAt.getTime()) / 1000, 1),
      machine: {
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
        cpus: cpus.length,
        cpuModel: cpus[0]?.model ?? 'unknown',
        memoryGb: round(os.totalmem() / 2 ** 30, 1),
        loadAvg1mAtStart: round(os.loadavg()[0]!, 2)
      },
      upstream: 'bench/servers/upstream.ts (node:http stand-in for list-by-condition, own process, own call counter)',
      gatewayOptions: { ...gatewayOptions, upstream: { ...gatewayOptions.upstream, baseUrl: 'http://127.0.0.1:<port>' } },
      scenarios,
      allMet: scenarios.every((sc) => sc.targets.every((t) => t.met))
    }
  } finally {
    await Promise.allSettled([...Child.all].map((child) => child.close()))
  }

  const out = values['json-out'] ?? join(ROOT, 'bench/results', quick ? 'quick.json' : 'latest.json')
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n')
  if (values['json-out'] === undefined && !quick) {
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
    writeFileSync(join(ROOT, 'bench/results', `${stamp}.json`), JSON.stringify(report, null, 2) + '\n')
  }
  console.log(table(report))
  console.log(report.allMet ? '\nEvery target met.' : '\nSome target missed: see the rows marked MISSED.')
  log(`bench: report written to ${relative(process.cwd(), out)}`)
  clearTimeout(watchdog)
}

await main()
