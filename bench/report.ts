/**
 * The bench report: its JSON shape, the figures that go in it, and the table
 * printed at the end. Every baseline is named, in the table and in the JSON,
 * so a reader never has to guess what "baseline" stood for in a given row.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname } from 'node:path'
import type { GatewayOptions } from '../src/config.js'

/** What each figure is measured against; also the names of the anchor processes. */
export const BASELINES = {
  rest: 'bare Fastify 5',
  graphql: 'bare mercurius 16 + JIT',
  upstream: 'direct upstream',
  // The memory scenario compares the gateway with itself before the stream of ids.
  memory: 'gateway at start',
  // The replicas scenario: the same traffic through one gateway without Redis, and L1 against L2 hits.
  oneReplica: 'one replica',
  l1Hit: 'L1 hit'
} as const

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
  /** What `baseline` was measured on, e.g. "bare Fastify 5"; null where there is no anchor. */
  readonly baselineName: string | null
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

// ---------------------------------------------------------------- figures

export function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export function round (value: number, digits = 3): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

export function target (metric: string, op: '>=' | '<=', threshold: number, value: number): TargetResult {
  return { metric, op, threshold, value: round(value), met: op === '>=' ? value >= threshold : value <= threshold }
}

// ---------------------------------------------------------------- report

export interface ReportInput {
  readonly quick: boolean
  readonly command: string
  readonly startedAt: Date
  readonly gatewayOptions: GatewayOptions
  readonly scenarios: readonly ScenarioResult[]
}

export function buildReport ({ quick, command, startedAt, gatewayOptions, scenarios }: ReportInput): BenchReport {
  const cpus = os.cpus()
  return {
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
    // The port changes every run; hiding it keeps two reports diffable.
    gatewayOptions: { ...gatewayOptions, upstream: { ...gatewayOptions.upstream, baseUrl: 'http://127.0.0.1:<port>' } },
    scenarios,
    allMet: scenarios.every((sc) => sc.targets.every((t) => t.met))
  }
}

/** Writes the same JSON to every path given, creating folders as needed. */
export function writeReport (report: BenchReport, paths: readonly string[]): void {
  const json = JSON.stringify(report, null, 2) + '\n'
  for (const path of paths) {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, json)
  }
}

// ---------------------------------------------------------------- table

function fmt (value: number | null, unit: string): string {
  if (value === null) return '–'
  return `${Number.isInteger(value) ? value : value.toFixed(value < 10 ? 3 : 1).replace(/\.?0+$/, '')} ${unit}`
}

function against (sc: ScenarioResult): string {
  return sc.baselineName === null ? fmt(sc.baseline, sc.unit) : `${sc.baselineName}: ${fmt(sc.baseline, sc.unit)}`
}

/** A markdown table, one row per target, misses marked so they can't be skimmed over. */
export function table (report: BenchReport): string {
  const rows: string[][] = [['Scenario', 'Compared with', 'Gateway', 'Result', 'Target', 'Met']]
  for (const sc of report.scenarios) {
    const name = sc.id
    if (sc.targets.length === 0) {
      rows.push([name, against(sc), `${fmt(sc.gateway, sc.unit)} peak`, fmt(sc.value, sc.unit), 'report', '–'])
      continue
    }
    for (const t of sc.targets) {
      rows.push([name, against(sc), fmt(sc.gateway, sc.unit), `${t.metric} = ${t.value}`, `${t.op === '>=' ? '≥' : '≤'} ${t.threshold}`,
        t.met ? 'yes' : `**MISSED** by ${round(Math.abs(t.value - t.threshold))}`])
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const line = (r: string[]): string => '| ' + r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ') + ' |'
  return [line(rows[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.slice(1).map(line)].join('\n')
}

export function summary (report: BenchReport): string {
  return report.allMet ? '\nEvery target met.' : '\nSome target missed: see the rows marked MISSED.'
}
