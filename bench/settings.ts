/** How long and how hard each scenario runs, and what a scenario is to run.ts. */
import type { Servers } from './harness.js'
import type { ScenarioResult } from './report.js'

export interface Settings {
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
  replicasRequests: number
  replicasIds: number
  replicasIntervalMs: number
  replicasLatencyMs: number
  l2HitRequests: number
}

export const SETTINGS_FULL: Readonly<Settings> = {
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
  memoryConcurrency: 8,
  replicasRequests: 800,
  replicasIds: 300,
  replicasIntervalMs: 10,
  replicasLatencyMs: 20,
  l2HitRequests: 200
}

/** Smoke mode: every scenario once, briefly; the shape of the report, not its numbers. */
export const SETTINGS_QUICK: Readonly<Settings> = {
  ...SETTINGS_FULL,
  rounds: 1,
  hitSeconds: 0.5,
  warmupSeconds: 0.3,
  loneRequests: 20,
  loadSeconds: 0.5,
  memoryIds: 2_000,
  replicasRequests: 240,
  replicasIds: 120,
  l2HitRequests: 20
}

export interface Scenario {
  /** The name `--only` selects it by. */
  readonly name: string
  /** What the progress log calls it. */
  readonly label: string
  /** One result per report row group; some measurements feed two rows. */
  readonly run: (s: Servers, cfg: Settings) => Promise<ScenarioResult[]>
}
