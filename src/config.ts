import { errors } from './errors.js'

/**
 * Configuration: one table of settings, each with its environment variable,
 * its option path, its rule and its default. `configFromEnv` turns the
 * environment into options (errors name the variable); `normalizeConfig`
 * validates options and returns a fresh frozen config (errors name the
 * option). The README's configuration table mirrors SETTINGS, and
 * test/config.test.ts keeps the two in step.
 */

export type UpstreamAuthMode = 'key' | 'passthrough'
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface GatewayConfig {
  readonly port: number
  readonly host: string
  readonly logLevel: LogLevel
  readonly production: boolean
  readonly upstream: {
    /** Origin plus optional path prefix, without a trailing slash. */
    readonly baseUrl: string
    readonly key: string | undefined
    readonly auth: UpstreamAuthMode
    readonly timeoutMs: number
    readonly connections: number
    readonly retries: number
    readonly retryBaseMs: number
    readonly retryAfterCapMs: number
    readonly maxBodyBytes: number
  }
  readonly batch: {
    readonly windowMs: number
    readonly maxIds: number
    readonly maxInFlight: number
    readonly maxQueued: number
  }
  readonly cache: {
    readonly ttlMs: number
    readonly finalTtlMs: number
    readonly notFoundTtlMs: number
    readonly staleMs: number
    readonly maxEntries: number
  }
  readonly limits: {
    readonly maxIdsPerRequest: number
    readonly maxIdLength: number
    readonly bodyLimitBytes: number
  }
}

type Rule =
  | { kind: 'int', min: number, max: number }
  | { kind: 'string', optional?: boolean }
  | { kind: 'url' }
  | { kind: 'enum', values: readonly string[] }
  | { kind: 'bool' }

interface Setting {
  readonly env: string
  readonly path: readonly [string] | readonly [string, string]
  readonly rule: Rule
  readonly default: unknown
  readonly doc: string
}

const int = (min: number, max: number): Rule => ({ kind: 'int', min, max })
const DAY = 86_400_000

export const SETTINGS: readonly Setting[] = Object.freeze([
  { env: 'PORT', path: ['port'], rule: int(0, 65535), default: 3000, doc: 'Port to listen on.' },
  { env: 'HOST', path: ['host'], rule: { kind: 'string' }, default: '127.0.0.1', doc: 'Address to bind. Use 0.0.0.0 in containers.' },
  { env: 'LOG_LEVEL', path: ['logLevel'], rule: { kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }, default: 'info', doc: 'pino log level.' },
  { env: 'NODE_ENV', path: ['production'], rule: { kind: 'bool' }, default: false, doc: '`production` turns on production defaults (see Security).' },
  { env: 'COMETAPI_BASE_URL', path: ['upstream', 'baseUrl'], rule: { kind: 'url' }, default: 'https://api.cometapi.com', doc: 'CometAPI (or compatible proxy) base URL; a path prefix is kept.' },
  { env: 'COMETAPI_KEY', path: ['upstream', 'key'], rule: { kind: 'string', optional: true }, default: undefined, doc: 'CometAPI key sent as `Authorization: Bearer`. Never logged.' },
  { env: 'UPSTREAM_AUTH', path: ['upstream', 'auth'], rule: { kind: 'enum', values: ['key', 'passthrough'] }, default: 'key', doc: '`key` uses COMETAPI_KEY; `passthrough` forwards each client\'s own bearer token.' },
  { env: 'UPSTREAM_TIMEOUT_MS', path: ['upstream', 'timeoutMs'], rule: int(1, 300_000), default: 10_000, doc: 'Overall deadline of one upstream lookup, retries included.' },
  { env: 'UPSTREAM_CONNECTIONS', path: ['upstream', 'connections'], rule: int(1, 1024), default: 16, doc: 'Keep-alive connections in the upstream pool.' },
  { env: 'UPSTREAM_RETRIES', path: ['upstream', 'retries'], rule: int(0, 10), default: 2, doc: 'Retries of a failed read (connection error, 429, 502, 503, 504).' },
  { env: 'UPSTREAM_RETRY_BASE_MS', path: ['upstream', 'retryBaseMs'], rule: int(1, 60_000), default: 100, doc: 'Base of the exponential backoff (full jitter).' },
  { env: 'UPSTREAM_RETRY_AFTER_CAP_MS', path: ['upstream', 'retryAfterCapMs'], rule: int(0, 300_000), default: 5_000, doc: 'Longest `Retry-After` the gateway waits out before retrying.' },
  { env: 'UPSTREAM_MAX_BODY_BYTES', path: ['upstream', 'maxBodyBytes'], rule: int(1024, 1 << 30), default: 16 << 20, doc: 'Largest upstream response body accepted.' },
  { env: 'BATCH_WINDOW_MS', path: ['batch', 'windowMs'], rule: int(0, 10_000), default: 20, doc: 'Longest a lookup is held back to merge while upstream calls are in flight (0: never held).' },
  { env: 'BATCH_MAX_IDS', path: ['batch', 'maxIds'], rule: int(1, 10_000), default: 100, doc: 'Most ids in one upstream call; larger batches are split.' },
  { env: 'BATCH_MAX_IN_FLIGHT', path: ['batch', 'maxInFlight'], rule: int(1, 1024), default: 2, doc: 'Partial batches sent while fewer calls than this are in flight; beyond it they wait and merge.' },
  { env: 'BATCH_MAX_QUEUED', path: ['batch', 'maxQueued'], rule: int(1, 10_000_000), default: 100_000, doc: 'Most ids waiting or in flight per credential; more get 503.' },
  { env: 'CACHE_TTL_MS', path: ['cache', 'ttlMs'], rule: int(0, DAY), default: 2_000, doc: 'Freshness of an unfinished task. `0` turns the cache off.' },
  { env: 'CACHE_FINAL_TTL_MS', path: ['cache', 'finalTtlMs'], rule: int(0, 30 * DAY), default: 600_000, doc: 'Freshness of a SUCCESS, FAILURE or CANCEL task.' },
  { env: 'CACHE_NOT_FOUND_TTL_MS', path: ['cache', 'notFoundTtlMs'], rule: int(0, DAY), default: 1_000, doc: 'How long an id upstream did not return is remembered as unknown.' },
  { env: 'CACHE_STALE_MS', path: ['cache', 'staleMs'], rule: int(0, 30 * DAY), default: 60_000, doc: 'How long past expiry a task may still be served, marked stale, when upstream fails.' },
  { env: 'CACHE_MAX_ENTRIES', path: ['cache', 'maxEntries'], rule: int(1, 10_000_000), default: 10_000, doc: 'Bound of the LRU task cache.' },
  { env: 'MAX_IDS_PER_REQUEST', path: ['limits', 'maxIdsPerRequest'], rule: int(1, 100_000), default: 500, doc: 'Most ids one request may ask for.' },
  { env: 'MAX_ID_LENGTH', path: ['limits', 'maxIdLength'], rule: int(1, 1024), default: 64, doc: 'Longest accepted task id.' },
  { env: 'BODY_LIMIT_BYTES', path: ['limits', 'bodyLimitBytes'], rule: int(1024, 1 << 30), default: 1 << 20, doc: 'Largest request body; more gets 413.' }
] as const satisfies readonly Setting[])

/** Options as callers (tests, embedders) pass them: any subset of the config. */
export type GatewayOptions = {
  [K in keyof GatewayConfig]?: GatewayConfig[K] extends object ? Partial<GatewayConfig[K]> : GatewayConfig[K]
}

function describe (value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

function ruleText (rule: Rule): string {
  switch (rule.kind) {
    case 'int': return `an integer from ${rule.min} to ${rule.max}`
    case 'string': return 'a non-empty string'
    case 'url': return 'an http(s) URL'
    case 'enum': return `one of ${rule.values.join(', ')}`
    case 'bool': return 'true or false'
  }
}

/** Returns the normalized value, or undefined when the value breaks the rule. */
function check (rule: Rule, value: unknown): unknown {
  switch (rule.kind) {
    case 'int':
      return Number.isInteger(value) && (value as number) >= rule.min && (value as number) <= rule.max ? value : undefined
    case 'string':
      return typeof value === 'string' && value !== '' ? value : undefined
    case 'enum':
      return typeof value === 'string' && rule.values.includes(value) ? value : undefined
    case 'bool':
      return typeof value === 'boolean' ? value : undefined
    case 'url': {
      if (typeof value !== 'string') return undefined
      let url: URL
      try { url = new URL(value) } catch { return undefined }
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '' ||
        url.username !== '' || url.password !== '') return undefined
      return url.origin + url.pathname.replace(/\/+$/, '')
    }
  }
}

function parseEnv (setting: Setting, raw: string): unknown {
  switch (setting.rule.kind) {
    case 'int': return /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw
    case 'bool': return setting.env === 'NODE_ENV' ? raw === 'production' : raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw
    default: return raw
  }
}

function getPath (obj: Record<string, any>, path: readonly string[]): unknown {
  return path.length === 1 ? obj[path[0]!] : obj[path[0]!]?.[path[1]!]
}

function setPath (obj: Record<string, any>, path: readonly string[], value: unknown): void {
  if (path.length === 1) { obj[path[0]!] = value; return }
  obj[path[0]!] ??= {}
  obj[path[0]!][path[1]!] = value
}

/** Reads the settings from an environment. Empty variables count as unset. */
export function configFromEnv (env: NodeJS.ProcessEnv): GatewayOptions {
  const options: Record<string, any> = {}
  for (const setting of SETTINGS) {
    const raw = env[setting.env]
    if (raw === undefined || raw === '') continue
    const value = parseEnv(setting, raw)
    if (check(setting.rule, value) === undefined) {
      const shown = setting.env === 'COMETAPI_KEY' ? '(hidden)' : describe(raw)
      throw new errors.InvalidConfig(`Invalid environment variable ${setting.env}: expected ${ruleText(setting.rule)}, got ${shown}`)
    }
    setPath(options, setting.path, value)
  }
  return options as GatewayOptions
}

function deepFreeze<T extends Record<string, any>> (obj: T): T {
  for (const value of Object.values(obj)) if (value !== null && typeof value === 'object') deepFreeze(value)
  return Object.freeze(obj)
}

/** Validates options against SETTINGS and returns a fresh, frozen config. */
export function normalizeConfig (options: GatewayOptions = {}): GatewayConfig {
  const config: Record<string, any> = {}
  for (const setting of SETTINGS) {
    const given = getPath(options as Record<string, any>, setting.path)
    if (given === undefined) {
      setPath(config, setting.path, setting.default)
      continue
    }
    const value = check(setting.rule, given)
    if (value === undefined) {
      const shown = setting.env === 'COMETAPI_KEY' ? '(hidden)' : describe(given)
      throw new errors.InvalidConfig(`Invalid option ${setting.path.join('.')}: expected ${ruleText(setting.rule)}, got ${shown}`)
    }
    setPath(config, setting.path, value)
  }
  if (config.upstream.auth === 'passthrough' && config.upstream.key !== undefined) {
    throw new errors.InvalidConfig('Invalid option upstream.key: COMETAPI_KEY must not be set with UPSTREAM_AUTH=passthrough')
  }
  return deepFreeze(config) as GatewayConfig
}
