/**
 * Simulator options: the public shape, the defaults, and the validation that
 * turns user input into one frozen, fully resolved object. Every error names
 * the option and the bad value so a typo in a test or an env var is obvious.
 */
import { randomInt } from 'node:crypto'
import { normalizeFaultSpec, type FaultSpec, type NormalizedFault } from './faults.js'
import { DEFAULT_KEEP_ALIVE, type KeepAliveOptions } from './keep-alive.js'

export const DEFAULT_KEY = 'sk-sim-demo'
/** Default total time from submit to SUCCESS. */
export const DEFAULT_DURATION_MS = 20_000
/** Prompts containing one of these words are refused at submit with code 24. */
export const DEFAULT_BANNED_WORDS: readonly string[] = Object.freeze(['banned', 'nsfw'])
/** Prompts containing one of these words fail half-way through IN_PROGRESS. */
export const DEFAULT_FAIL_WORDS: readonly string[] = Object.freeze(['fail-midway'])

export interface SimulatorOptions {
  /** Accepted API keys (`Authorization: Bearer <key>`). Default `['sk-sim-demo']`; the first one owns the seeded tasks. */
  keys?: string[]
  /** Clock in epoch ms. Status is computed from it at read time, so a fake clock drives the lifecycle. */
  now?: () => number
  /** Time from submit to SUCCESS for new tasks (10% queued, 10% submitted, 80% in progress). Default 20000. */
  durationMs?: number
  /** Seed of the RNG behind task ids and button uuids; fixed seed + fake clock = deterministic ids. Default random. */
  seed?: number
  /** Latency added to every API request (not the control route). Default 0. */
  latencyMs?: number
  /** Sleep used for latency faults; inject a recorder in tests instead of waiting. Default setTimeout. */
  sleep?: (ms: number) => Promise<void>
  /** Mount the `/_sim/*` control routes. Off by default. */
  controlRoute?: boolean
  /** Fastify logger option. Default false. */
  logger?: boolean | object
  /** Base of `imageUrl` (e.g. `https://sim.example`); default: the request's own protocol and host. */
  baseUrl?: string
  /** Words that make submit answer code 24 (case-insensitive substring match). */
  bannedWords?: string[]
  /** Words that make a task fail half-way with a failReason (case-insensitive substring match). */
  failWords?: string[]
  /** Seed the demo tasks (see SEED_TASK_IDS). Default true. */
  seedTasks?: boolean
  /** Faults active from the start (see FaultSpec). */
  faults?: FaultSpec[]
  /**
   * Keep a demo moving: while requests come in, start a new task (owned by the
   * first key) every `everyMs` of simulator time and keep the newest `keep` of
   * them (see keep-alive.ts). `true` = every 15 s, keep 12. Default off.
   */
  keepAlive?: boolean | { everyMs?: number, keep?: number }
}

export interface ResolvedSimulatorOptions {
  readonly keys: readonly string[]
  readonly now: () => number
  readonly durationMs: number
  readonly seed: number
  readonly latencyMs: number
  readonly sleep: (ms: number) => Promise<void>
  readonly controlRoute: boolean
  readonly logger: boolean | object
  readonly baseUrl: string | null
  readonly bannedWords: readonly string[]
  readonly failWords: readonly string[]
  readonly seedTasks: boolean
  readonly faults: readonly NormalizedFault[]
  readonly keepAlive: KeepAliveOptions | null
}

const KNOWN = new Set(['keys', 'now', 'durationMs', 'seed', 'latencyMs', 'sleep', 'controlRoute', 'logger', 'baseUrl', 'bannedWords', 'failWords', 'seedTasks', 'faults', 'keepAlive'])

function show (value: unknown): string {
  if (typeof value === 'function') return 'a function'
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

function fail (name: string, expected: string, value: unknown): never {
  throw new TypeError(`simulator option "${name}" must be ${expected}, got ${show(value)}`)
}

function wordList (name: string, value: unknown, fallback: readonly string[]): readonly string[] {
  if (value === undefined) return fallback
  if (!Array.isArray(value) || !value.every((w) => typeof w === 'string' && w.trim() !== '')) {
    fail(name, 'an array of non-empty strings', value)
  }
  return Object.freeze(value.map((w: string) => w.trim().toLowerCase()))
}

function keepAliveOptions (value: unknown): KeepAliveOptions | null {
  if (value === undefined || value === false) return null
  if (value === true) return DEFAULT_KEEP_ALIVE
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('keepAlive', 'a boolean or {everyMs?, keep?}', value)
  const { everyMs = DEFAULT_KEEP_ALIVE.everyMs, keep = DEFAULT_KEEP_ALIVE.keep, ...rest } = value as Record<string, unknown>
  if (Object.keys(rest).length > 0) fail('keepAlive', 'an object with only everyMs and keep', value)
  if (!Number.isInteger(everyMs) || (everyMs as number) < 1) fail('keepAlive.everyMs', 'a positive integer (ms)', everyMs)
  if (!Number.isInteger(keep) || (keep as number) < 1 || (keep as number) > 1000) fail('keepAlive.keep', 'an integer from 1 to 1000', keep)
  return Object.freeze({ everyMs: everyMs as number, keep: keep as number })
}

function defaultSleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export function resolveOptions (input: SimulatorOptions = {}): ResolvedSimulatorOptions {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) fail('options', 'an object', input)
  for (const name of Object.keys(input)) {
    if (!KNOWN.has(name)) throw new TypeError(`unknown simulator option "${name}"`)
  }

  let keys: readonly string[] = [DEFAULT_KEY]
  if (input.keys !== undefined) {
    const k = input.keys
    // Keys go into an HTTP header, so whitespace would make them unusable.
    if (!Array.isArray(k) || k.length === 0 || !k.every((s) => typeof s === 'string' && /^\S+$/.test(s))) {
      fail('keys', 'a non-empty array of non-empty strings without whitespace', k)
    }
    if (new Set(k).size !== k.length) fail('keys', 'free of duplicates', k)
    keys = Object.freeze([...k])
  }

  const now = input.now ?? Date.now
  if (typeof now !== 'function') fail('now', 'a function returning epoch ms', now)

  const durationMs = input.durationMs ?? DEFAULT_DURATION_MS
  if (!Number.isInteger(durationMs) || durationMs < 1) fail('durationMs', 'a positive integer (ms)', durationMs)

  // The seed actually used is kept so a failing run can be replayed.
  const seed = input.seed ?? randomInt(0, 2 ** 32)
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) fail('seed', 'an integer in [0, 2^32)', seed)

  const latencyMs = input.latencyMs ?? 0
  if (!Number.isFinite(latencyMs) || latencyMs < 0) fail('latencyMs', 'a non-negative number (ms)', latencyMs)

  const sleep = input.sleep ?? defaultSleep
  if (typeof sleep !== 'function') fail('sleep', 'a function (ms) => Promise<void>', sleep)

  const controlRoute = input.controlRoute ?? false
  if (typeof controlRoute !== 'boolean') fail('controlRoute', 'a boolean', controlRoute)

  const logger = input.logger ?? false
  if (typeof logger !== 'boolean' && (logger === null || typeof logger !== 'object')) fail('logger', 'a boolean or a logger options object', logger)

  let baseUrl: string | null = null
  if (input.baseUrl !== undefined) {
    let parsed: URL | null = null
    try {
      parsed = typeof input.baseUrl === 'string' ? new URL(input.baseUrl) : null
    } catch {}
    if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.search !== '' || parsed.hash !== '') {
      fail('baseUrl', 'an http(s) URL without query or hash', input.baseUrl)
    }
    baseUrl = parsed.href.replace(/\/+$/, '')
  }

  const seedTasks = input.seedTasks ?? true
  if (typeof seedTasks !== 'boolean') fail('seedTasks', 'a boolean', seedTasks)

  let faults: readonly NormalizedFault[] = []
  if (input.faults !== undefined) {
    if (!Array.isArray(input.faults)) fail('faults', 'an array of fault specs', input.faults)
    faults = Object.freeze(input.faults.map((f, i) => normalizeFaultSpec(f, `faults[${i}]`)))
  }

  return Object.freeze({
    keys,
    now,
    durationMs,
    seed,
    latencyMs,
    sleep,
    controlRoute,
    logger,
    baseUrl,
    bannedWords: wordList('bannedWords', input.bannedWords, DEFAULT_BANNED_WORDS),
    failWords: wordList('failWords', input.failWords, DEFAULT_FAIL_WORDS),
    seedTasks,
    faults,
    keepAlive: keepAliveOptions(input.keepAlive)
  })
}
