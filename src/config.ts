import { isIP } from 'node:net'
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
  readonly breaker: {
    readonly threshold: number
    readonly cooldownMs: number
  }
  readonly load: {
    readonly maxEventLoopDelayMs: number
    /** 0: derived from V8's heap limit (see src/plugins/load-shedding.ts). */
    readonly maxHeapUsedBytes: number
    readonly maxRssBytes: number
    readonly sampleIntervalMs: number
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
    readonly submitBodyLimitBytes: number
    readonly requestTimeoutMs: number
  }
  /** Client auth, rate limit and CORS; parsed and checked by src/security/policy.ts. */
  readonly security: {
    /** Comma-separated client keys. Never logged. */
    readonly apiKeys: string | undefined
    readonly rateLimitMax: number | undefined
    readonly rateLimitWindowMs: number
    readonly corsOrigins: string | undefined
    /**
     * Proxies whose `X-Forwarded-For` names the client (fastify's `trustProxy`): addresses, CIDR
     * ranges and proxy-addr's names. Undefined: the connection's peer is the client.
     */
    readonly trustProxy: readonly string[] | undefined
    /** Pages; undefined means on, except in production. */
    readonly graphiql: boolean | undefined
    readonly docs: boolean | undefined
  }
  readonly graphql: {
    readonly maxDepth: number
    readonly maxFields: number
    /** Most operations in one batched POST (a JSON array of requests). */
    readonly maxBatch: number
    /** undefined means on, except in production. */
    readonly introspection: boolean | undefined
    /** Responses kept for repeated queries; 0 turns the response cache off. */
    readonly responseCacheMaxEntries: number
  }
  readonly metrics: {
    readonly enabled: boolean
    /** When set, GET /metrics wants `Authorization: Bearer <token>`. Never logged. */
    readonly token: string | undefined
  }
  readonly memory: {
    /** V8's `--heap-growing-percent`, set once at start (src/process-tuning.ts); 0 leaves V8's dynamic growth. */
    readonly heapGrowthPercent: number
  }
  /** The shared tier; off (one replica, everything in process) while `url` is unset. */
  readonly redis: {
    /** `redis://` or `rediss://`, with user and password when set. Never logged. */
    readonly url: string | undefined
    readonly prefix: string
    readonly timeoutMs: number
  }
  /** Idempotency keys on submits (src/core/idempotency.ts): in Redis when `redis.url` is set, else in process. */
  readonly idempotency: {
    readonly ttlMs: number
    readonly maxEntries: number
  }
  readonly watch: {
    readonly intervalMs: number
    readonly maxIdsPerConnection: number
    readonly maxIds: number
    readonly maxConnectionsPerClient: number
    readonly heartbeatMs: number
  }
}

type Rule =
  | { kind: 'int', min: number, max: number }
  | { kind: 'string', optional?: boolean }
  | { kind: 'url' }
  | { kind: 'redis-url', optional: true }
  | { kind: 'enum', values: readonly string[] }
  | { kind: 'bool' }
  | { kind: 'trust-proxy' }

interface Setting {
  readonly env: string
  readonly path: readonly [string] | readonly [string, string]
  readonly rule: Rule
  readonly default: unknown
  readonly doc: string
}

const int = (min: number, max: number): Rule => ({ kind: 'int', min, max })
/** Settings whose values an error message must never echo. */
const SECRET_ENVS: ReadonlySet<string> = new Set(['COMETAPI_KEY', 'GATEWAY_API_KEYS', 'METRICS_TOKEN', 'REDIS_URL'])
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
  { env: 'BREAKER_THRESHOLD', path: ['breaker', 'threshold'], rule: int(1, 1000), default: 5, doc: 'Consecutive failed upstream lookups (5xx, connection, timeout, 429, bad body; not other 4xx) that open the circuit breaker.' },
  { env: 'BREAKER_COOLDOWN_MS', path: ['breaker', 'cooldownMs'], rule: int(0, 600_000), default: 10_000, doc: 'How long an open breaker fails fast (or serves stale) before one probe call is let through.' },
  { env: 'LOAD_MAX_EVENT_LOOP_DELAY_MS', path: ['load', 'maxEventLoopDelayMs'], rule: int(0, 60_000), default: 1_000, doc: 'Mean event-loop delay past which requests are shed with 503 `GW_ERR_OVERLOADED` (`0`: off).' },
  { env: 'LOAD_MAX_HEAP_USED_BYTES', path: ['load', 'maxHeapUsedBytes'], rule: int(0, 2 ** 50), default: 0, doc: 'Heap use past which requests are shed; `0`: 90% of V8\'s heap limit.' },
  { env: 'LOAD_MAX_RSS_BYTES', path: ['load', 'maxRssBytes'], rule: int(0, 2 ** 50), default: 0, doc: 'Resident memory past which requests are shed (`0`: off).' },
  { env: 'LOAD_SAMPLE_INTERVAL_MS', path: ['load', 'sampleIntervalMs'], rule: int(100, 60_000), default: 1_000, doc: 'How often event-loop delay and memory are sampled for load shedding (at least 100 ms: a shorter sample can hold no event-loop reading).' },
  { env: 'BATCH_WINDOW_MS', path: ['batch', 'windowMs'], rule: int(0, 10_000), default: 5, doc: 'Longest a lookup is held back to merge while upstream calls are in flight (0: never held).' },
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
  { env: 'BODY_LIMIT_BYTES', path: ['limits', 'bodyLimitBytes'], rule: int(1024, 1 << 30), default: 1 << 20, doc: 'Largest request body on every route but `/mj/submit/*` and `POST /graphql`; more gets 413 `GW_ERR_BODY_TOO_LARGE`.' },
  { env: 'SUBMIT_BODY_LIMIT_BYTES', path: ['limits', 'submitBodyLimitBytes'], rule: int(1024, 1 << 30), default: 16 << 20, doc: 'Largest body of a relayed `/mj/submit/*` and of `POST /graphql` (mutations), whose `base64Array` carries images: 16 MiB fits a `blend` of five 2 MiB images or a `describe` of one 10 MiB image, base64 included; more gets 413.' },
  { env: 'REQUEST_TIMEOUT_MS', path: ['limits', 'requestTimeoutMs'], rule: int(100, 600_000), default: 30_000, doc: 'Longest a client may take to send a whole request, headers and body; a slower one is cut with 408 `GW_ERR_REQUEST_TIMEOUT`, at most a tenth later. Live streams (SSE, WebSocket) are not affected once open.' },
  { env: 'GATEWAY_API_KEYS', path: ['security', 'apiKeys'], rule: { kind: 'string', optional: true }, default: undefined, doc: 'Comma-separated client keys (16+ characters each). When set, every route but `/healthz` and `/readyz` needs one. Never logged.' },
  { env: 'RATE_LIMIT_MAX', path: ['security', 'rateLimitMax'], rule: int(1, 1_000_000_000), default: undefined, doc: 'Requests per client key (per IP address without one) per window; more get 429. Unset: no rate limit.' },
  { env: 'RATE_LIMIT_WINDOW_MS', path: ['security', 'rateLimitWindowMs'], rule: int(1000, DAY), default: 60_000, doc: 'Window of `RATE_LIMIT_MAX`.' },
  { env: 'CORS_ORIGINS', path: ['security', 'corsOrigins'], rule: { kind: 'string', optional: true }, default: undefined, doc: 'Comma-separated origins allowed by CORS, or `*`. Unset: no CORS headers.' },
  { env: 'TRUST_PROXY', path: ['security', 'trustProxy'], rule: { kind: 'trust-proxy' }, default: undefined, doc: 'The proxies in front of the gateway whose `X-Forwarded-For` names the client, for the per-IP rate limit, stream counts and logs: comma-separated addresses and CIDR ranges of the balancers (`10.0.0.0/8,loopback`; `linklocal` and `uniquelocal`, the private ranges, work too). Unset: the connection\'s peer is the client, and a forwarded header is ignored. There is no `true` and no hop count: either would let a client that reaches the port directly pick its own address.' },
  { env: 'GRAPHQL_MAX_DEPTH', path: ['graphql', 'maxDepth'], rule: int(1, 100), default: 15, doc: 'Deepest GraphQL selection accepted; deeper gets a `GW_ERR_QUERY_TOO_COMPLEX` request error. 15 fits the standard introspection query (GraphiQL\'s).' },
  { env: 'GRAPHQL_MAX_FIELDS', path: ['graphql', 'maxFields'], rule: int(1, 100_000), default: 500, doc: 'Most fields in one GraphQL document (or batch), each alias and each use of a fragment counted; more gets a `GW_ERR_QUERY_TOO_COMPLEX` request error.' },
  { env: 'GRAPHQL_MAX_BATCH', path: ['graphql', 'maxBatch'], rule: int(1, 1000), default: 10, doc: 'Most operations in one batched GraphQL POST (a JSON array, as Apollo\'s `BatchHttpLink` and graphql-request\'s `batchRequests` send); more gets 413. A batch counts as one request for the rate limit, `MAX_IDS_PER_REQUEST` and `GRAPHQL_MAX_FIELDS`.' },
  { env: 'GRAPHQL_INTROSPECTION', path: ['graphql', 'introspection'], rule: { kind: 'bool' }, default: undefined, doc: 'GraphQL introspection. Unset: on, but off in production.' },
  { env: 'GRAPHQL_RESPONSE_CACHE_MAX_ENTRIES', path: ['graphql', 'responseCacheMaxEntries'], rule: int(0, 1_000_000), default: 1_000, doc: 'Responses of repeated GraphQL queries kept (at most 16 MiB in all) and reused while every task they read is unchanged and fresh. `0`: off.' },
  { env: 'GRAPHIQL_ENABLED', path: ['security', 'graphiql'], rule: { kind: 'bool' }, default: undefined, doc: 'The GraphiQL page at `/graphiql`. Unset: on, but off in production.' },
  { env: 'DOCS_ENABLED', path: ['security', 'docs'], rule: { kind: 'bool' }, default: undefined, doc: 'Swagger UI at `/docs` and the spec at `/openapi.yaml`. Unset: on, but off in production.' },
  { env: 'METRICS_ENABLED', path: ['metrics', 'enabled'], rule: { kind: 'bool' }, default: true, doc: 'Serve Prometheus metrics at `GET /metrics`; `false` removes the route (404).' },
  { env: 'METRICS_TOKEN', path: ['metrics', 'token'], rule: { kind: 'string', optional: true }, default: undefined, doc: 'When set, `/metrics` needs `Authorization: Bearer <token>`. Never logged.' },
  { env: 'MEMORY_HEAP_GROWTH_PERCENT', path: ['memory', 'heapGrowthPercent'], rule: int(0, 300), default: 10, doc: 'How far V8 lets the heap grow past the live set between full collections, in percent (V8\'s `--heap-growing-percent`, set at start). 10 keeps peak memory near 170 MB under a stream of distinct ids, where V8\'s own dynamic growth (`0`) reaches about 300 MB. `npm start` and the Docker image also start Node with `--max-semi-space-size=8`.' },
  { env: 'REDIS_URL', path: ['redis', 'url'], rule: { kind: 'redis-url', optional: true }, default: undefined, doc: 'Redis or Valkey shared by the replicas (`redis://` or `rediss://`, with user and password when set). Unset: no shared tier, everything stays in process. Never logged.' },
  { env: 'REDIS_PREFIX', path: ['redis', 'prefix'], rule: { kind: 'string' }, default: 'mjgw:', doc: 'Prefix of every Redis key and channel the gateway uses.' },
  { env: 'REDIS_TIMEOUT_MS', path: ['redis', 'timeoutMs'], rule: int(1, 60_000), default: 200, doc: 'Deadline of one Redis command; past it the replica goes on without the shared tier (L1 and upstream).' },
  { env: 'IDEMPOTENCY_TTL_MS', path: ['idempotency', 'ttlMs'], rule: int(1000, 30 * DAY), default: DAY, doc: 'How long an upstream answer to a submit with an `Idempotency-Key` (or `idempotencyKey`) is kept and replayed for a retry with the same key.' },
  { env: 'IDEMPOTENCY_MAX_ENTRIES', path: ['idempotency', 'maxEntries'], rule: int(1, 10_000_000), default: 10_000, doc: 'Bound of the in-process idempotency store, used without `REDIS_URL` and while Redis is down; the least recently used keys go first.' },
  { env: 'WATCH_INTERVAL_MS', path: ['watch', 'intervalMs'], rule: int(50, 3_600_000), default: 3_000, doc: 'How often the live-update watcher polls every watched id (through the cache and batcher). Keep it above `CACHE_TTL_MS`, or ticks may see cached copies.' },
  { env: 'WATCH_MAX_IDS_PER_CONNECTION', path: ['watch', 'maxIdsPerConnection'], rule: int(1, 10_000), default: 100, doc: 'Most task ids one live stream (SSE connection or GraphQL subscription) may watch; more gets 400.' },
  { env: 'WATCH_MAX_IDS', path: ['watch', 'maxIds'], rule: int(1, 10_000_000), default: 10_000, doc: 'Most distinct task ids the process watches at once; a stream that would pass it gets 503.' },
  { env: 'WATCH_MAX_CONNECTIONS_PER_CLIENT', path: ['watch', 'maxConnectionsPerClient'], rule: int(1, 100_000), default: 20, doc: 'Most live streams open at once per client (client key when GATEWAY_API_KEYS is set, else IP address); more gets 429.' },
  { env: 'SSE_HEARTBEAT_MS', path: ['watch', 'heartbeatMs'], rule: int(100, 600_000), default: 15_000, doc: 'Interval of the `: ping` comment on SSE streams and of the ping on GraphQL WebSockets.' }
] as const satisfies readonly Setting[])

/**
 * The body bound of every route that carries a submit, SUBMIT_BODY_LIMIT_BYTES:
 * the relay (`POST /mj/submit/:action`) and `POST /graphql` (mutations), whose
 * `base64Array` carries images. Both read it from here.
 */
export function submitBodyLimitBytes (config: GatewayConfig): number {
  return config.limits.submitBodyLimitBytes
}

/** Options as callers (tests, embedders) pass them: any subset of the config. */
export type GatewayOptions = {
  [K in keyof GatewayConfig]?: GatewayConfig[K] extends object ? Partial<GatewayConfig[K]> : GatewayConfig[K]
}

/** A value as an error message shows it; a URL's user and password are masked, since they are credentials. */
function describe (value: unknown): string {
  if (typeof value !== 'string') return String(value)
  return JSON.stringify(value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1(hidden)@'))
}

function ruleText (rule: Rule): string {
  switch (rule.kind) {
    case 'int': return `an integer from ${rule.min} to ${rule.max}`
    case 'string': return 'a non-empty string'
    case 'url': return 'an http(s) URL'
    case 'redis-url': return 'a redis:// or rediss:// URL'
    case 'enum': return `one of ${rule.values.join(', ')}`
    case 'bool': return 'true or false'
    case 'trust-proxy': return 'comma-separated addresses, CIDR ranges, loopback, linklocal or uniquelocal'
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
    case 'redis-url': {
      if (typeof value !== 'string') return undefined
      let url: URL
      try { url = new URL(value) } catch { return undefined }
      return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' ? value : undefined
    }
    case 'trust-proxy': {
      const entries = typeof value === 'string' ? value.split(',').map((entry) => entry.trim()) : value
      return Array.isArray(entries) && entries.length > 0 && entries.every(isProxyAddress) ? entries : undefined
    }
  }
}

/** proxy-addr's (and so fastify's) names for whole ranges. */
const PROXY_RANGE_NAMES: ReadonlySet<string> = new Set(['loopback', 'linklocal', 'uniquelocal'])

/** An address, a CIDR range (`10.0.0.0/8`) or one of proxy-addr's range names. */
function isProxyAddress (entry: unknown): boolean {
  if (typeof entry !== 'string') return false
  if (PROXY_RANGE_NAMES.has(entry)) return true
  const [address = '', prefix, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  return prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128))
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
      const shown = SECRET_ENVS.has(setting.env) ? '(hidden)' : describe(raw)
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
      const shown = SECRET_ENVS.has(setting.env) ? '(hidden)' : describe(given)
      throw new errors.InvalidConfig(`Invalid option ${setting.path.join('.')}: expected ${ruleText(setting.rule)}, got ${shown}`)
    }
    setPath(config, setting.path, value)
  }
  if (config.upstream.auth === 'passthrough' && config.upstream.key !== undefined) {
    throw new errors.InvalidConfig('Invalid option upstream.key: COMETAPI_KEY must not be set with UPSTREAM_AUTH=passthrough')
  }
  return deepFreeze(config) as GatewayConfig
}
