import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { errors, type GatewayError } from '../errors.js'
import type { Acquired, Landing, SharedStore } from '../core/shared-store.js'
import type { CacheEntry } from '../core/task-cache.js'
import { StoredTask } from '../core/stored-task.js'
import type { SharedTier } from '../plugins/redis.js'

/*
 * Keys (REDIS_PREFIX first; `ns` is a digest of the upstream URL and key, so
 * two deployments sharing one Redis never share answers; `partition` is
 * `shared` or a SHA-256 digest of a pass-through credential):
 *   <prefix>task:<ns>:<partition>:<id>    an entry, JSON {freshUntil, storedAt, task} (the task's text as kept), PX = fresh TTL + stale window
 *   <prefix>lease:<ns>:<partition>:<id>   the replica fetching that id, PX = upstream deadline + margin
 *   <prefix>tasks:<ns>                    the channel answers are announced on
 * Values are task JSON and a replica's random token: never a credential.
 */

/**
 * Per id: a fresh entry (1, value); else the lease, claimed (2, stale value)
 * or held by another replica (3, stale value, ms left). A lease this replica
 * already holds (its last settle failed) is claimed again, not waited on.
 * KEYS: n task keys, then their n lease keys. ARGV: now, token, lease ms.
 */
const ACQUIRE = `
local n = #KEYS / 2
local now = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local value = redis.call('GET', KEYS[i])
  local fresh = false
  if value then
    local freshUntil = tonumber(string.match(value, '^{"freshUntil":(%d+)'))
    fresh = freshUntil ~= nil and freshUntil > now
  end
  if fresh then
    out[i] = {1, value}
  elseif redis.call('SET', KEYS[n + i], ARGV[2], 'NX', 'PX', ARGV[3]) then
    out[i] = {2, value}
  elseif redis.call('GET', KEYS[n + i]) == ARGV[2] then
    redis.call('SET', KEYS[n + i], ARGV[2], 'PX', ARGV[3])
    out[i] = {2, value}
  else
    local left = redis.call('PTTL', KEYS[n + i])
    if left < 0 then
      -- A lease without expiry is not ours to honour for ever.
      redis.call('PEXPIRE', KEYS[n + i], ARGV[3])
      left = tonumber(ARGV[3])
    end
    out[i] = {3, value, left}
  end
end
return out
`

/**
 * Writes m entries (never over a newer one), releases this replica's leases,
 * announces. KEYS: m task keys, then lease keys. ARGV: token, channel,
 * message, m, then per entry: value, PX, storedAt.
 */
const SETTLE = `
local m = tonumber(ARGV[4])
for i = 1, m do
  local base = 4 + (i - 1) * 3
  local old = redis.call('GET', KEYS[i])
  local oldStored = old and tonumber(string.match(old, '^{"freshUntil":%d+,"storedAt":(%d+)'))
  if not oldStored or oldStored <= tonumber(ARGV[base + 3]) then
    redis.call('SET', KEYS[i], ARGV[base + 1], 'PX', ARGV[base + 2])
  end
end
for i = m + 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return m
`

interface Scripted {
  gwTaskAcquire (numKeys: number, ...args: Array<string | number>): Promise<Array<[number, string | null, number?]>>
  gwTaskSettle (numKeys: number, ...args: Array<string | number>): Promise<number>
}

function scripted (client: Redis): Scripted {
  const c = client as Redis & Partial<Scripted>
  if (typeof c.gwTaskAcquire !== 'function') c.defineCommand('gwTaskAcquire', { lua: ACQUIRE })
  if (typeof c.gwTaskSettle !== 'function') c.defineCommand('gwTaskSettle', { lua: SETTLE })
  return c as Redis & Scripted
}

/**
 * An entry as L2 stores it: the task's JSON text as this replica keeps it,
 * written in, never serialized again; `freshUntil` first, where the scripts
 * read it without decoding the task.
 */
export function encodeEntry (entry: CacheEntry): string {
  return `{"freshUntil":${Math.floor(entry.freshUntil)},"storedAt":${Math.floor(entry.storedAt)},"task":${entry.stored?.raw ?? 'null'}}`
}

const ENTRY_HEAD = /^\{"freshUntil":(\d+),"storedAt":(\d+),"task":/

/**
 * An entry read back (from a key or an announcement): a new entry with the
 * writer's expiry, its task rebuilt from the text as it is, parsed once.
 * Anything else (another program's value, a bad write, a task under another
 * id's key) counts as absent.
 */
export function decodeEntry (id: string, value: string): CacheEntry | undefined {
  const head = ENTRY_HEAD.exec(value)
  if (head === null || !value.endsWith('}')) return undefined
  const text = value.slice(head[0].length, -1)
  const stored = text === 'null' ? null : StoredTask.fromRaw(text, id)
  if (stored === undefined) return undefined
  return { stored, storedAt: Number(head[2]), freshUntil: Number(head[1]) }
}

interface WireError { code: string, message: string, statusCode: number, retryAfter?: number, upstreamStatus?: number }

const ERROR_CLASSES = new Map<string, new () => GatewayError>(
  Object.values(errors).map((E) => [new E().code, E as unknown as new () => GatewayError]))

/** Another replica's failure as this replica's error: the same class (so the same code and status), the same message. */
export function errorFromWire (wire: WireError): GatewayError {
  const err: GatewayError = new (ERROR_CLASSES.get(wire.code) ?? errors.UpstreamError)()
  err.message = wire.message
  if (typeof wire.retryAfter === 'number') err.retryAfter = wire.retryAfter
  if (typeof wire.upstreamStatus === 'number') err.upstreamStatus = wire.upstreamStatus
  return err
}

function errorToWire (err: GatewayError): WireError {
  return { code: err.code, message: err.message, statusCode: err.statusCode, retryAfter: err.retryAfter, upstreamStatus: err.upstreamStatus }
}

/**
 * The shared tier's task store on Redis (or Valkey): one script call per
 * acquire and per settle, announcements on one pub/sub channel. Every
 * command is bounded by REDIS_TIMEOUT_MS (the connection's commandTimeout)
 * and fails at once while the connection is down.
 */
export class RedisTaskStore implements SharedStore {
  readonly #tier: SharedTier
  readonly #redis: Scripted
  readonly #keyBase: string
  readonly #channel: string
  /** Marks this replica's leases and announcements; random per app instance. */
  readonly #token = randomBytes(12).toString('base64url')

  constructor (tier: SharedTier, namespace: string) {
    this.#tier = tier
    this.#redis = scripted(tier.client)
    this.#keyBase = `:${namespace}:`
    this.#channel = `${tier.prefix}tasks:${namespace}`
  }

  get available (): boolean { return this.#tier.state === 'up' }

  /** The key of an id's entry; tests read Redis with it. */
  taskKey (partition: string, id: string): string {
    return `${this.#tier.prefix}task${this.#keyBase}${partition}:${id}`
  }

  leaseKey (partition: string, id: string): string {
    return `${this.#tier.prefix}lease${this.#keyBase}${partition}:${id}`
  }

  async acquire (partition: string, ids: readonly string[], now: number, leaseMs: number): Promise<Acquired[]> {
    const keys = [...ids.map((id) => this.taskKey(partition, id)), ...ids.map((id) => this.leaseKey(partition, id))]
    const replies = await this.#redis.gwTaskAcquire(keys.length, ...keys, Math.floor(now), this.#token, leaseMs)
    if (!Array.isArray(replies) || replies.length !== ids.length) throw new Error(`acquire answered ${String(replies?.length)} results for ${ids.length} ids`)
    return replies.map(([kind, value, left], i): Acquired => {
      const entry = value == null ? undefined : decodeEntry(ids[i]!, value)
      if (kind === 1) {
        // Fresh by its own clock but unreadable: fetched again, without a lease, and overwritten.
        return entry === undefined ? { kind: 'claimed', stale: undefined } : { kind: 'fresh', entry }
      }
      if (kind === 2) return { kind: 'claimed', stale: entry }
      return { kind: 'held', stale: entry, leaseLeftMs: typeof left === 'number' && left > 0 ? left : 0 }
    })
  }

  async settle (partition: string, landings: readonly Landing[]): Promise<void> {
    const written: string[] = []
    const args: Array<string | number> = []
    const lines: string[] = []
    for (const landing of landings) {
      const id = JSON.stringify(landing.id)
      if (landing.entry !== undefined) {
        // The task's text goes in as this replica keeps it: written and announced, never serialized again.
        const value = encodeEntry(landing.entry)
        lines.push(`entry\t${id}\t${value}`)
        if (landing.keepMs > 0) {
          written.push(this.taskKey(partition, landing.id))
          args.push(value, Math.ceil(landing.keepMs), Math.floor(landing.entry.storedAt))
        }
      } else if (landing.error !== undefined) {
        lines.push(`error\t${id}\t${JSON.stringify(errorToWire(landing.error))}`)
      } else {
        lines.push(`released\t${id}`)
      }
    }
    const keys = [...written, ...landings.map((l) => this.leaseKey(partition, l.id))]
    const message = [this.#token, JSON.stringify(partition), ...lines].join('\n')
    await this.#redis.gwTaskSettle(keys.length, ...keys, this.#token, this.#channel, message, written.length, ...args)
  }

  async forget (partition: string, id: string): Promise<void> {
    await this.#tier.client.del(this.taskKey(partition, id))
  }

  listen (onNotice: (partition: string, landings: readonly Landing[]) => void): void {
    const sub = this.#tier.subscriber()
    // ioredis subscribes again by itself after every reconnect.
    sub.subscribe(this.#channel).catch(() => {})
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return
      const cut = message.indexOf('\n')
      // Our own announcements: this replica already knows.
      if (cut < 0 || message.slice(0, cut) === this.#token) return
      const notice = parseNotice(message.slice(cut + 1))
      if (notice !== undefined) onNotice(notice.partition, notice.landings)
    })
  }
}

/**
 * An announcement, checked entry by entry; a malformed one is dropped whole
 * (the poll still finds the answer). Its lines, after the partition's:
 * `entry<TAB>"id"<TAB>entry as L2 stores it` (the task's text as it is, so
 * nobody serializes it again), `error<TAB>"id"<TAB>error JSON`, or
 * `released<TAB>"id"` (a lease handed back unanswered). JSON text holds no
 * raw tab or newline, so neither can appear inside a field.
 */
export function parseNotice (text: string): { partition: string, landings: Landing[] } | undefined {
  const lines = text.split('\n')
  const partition = parseJson(lines[0]!)
  if (typeof partition !== 'string') return undefined
  const landings: Landing[] = []
  for (let i = 1; i < lines.length; i++) {
    const [kind, idJson, payload, extra] = lines[i]!.split('\t')
    const id = parseJson(idJson ?? '')
    if (typeof id !== 'string' || extra !== undefined) return undefined
    if (kind === 'released' && payload === undefined) {
      landings.push({ id })
    } else if (kind === 'error' && payload !== undefined) {
      const wire = parseJson(payload) as WireError | undefined
      if (typeof wire?.code !== 'string' || typeof wire.message !== 'string') return undefined
      landings.push({ id, error: errorFromWire(wire) })
    } else if (kind === 'entry' && payload !== undefined) {
      const entry = decodeEntry(id, payload)
      if (entry === undefined) return undefined
      landings.push({ id, entry, keepMs: 0 })
    } else {
      return undefined
    }
  }
  return { partition, landings }
}

function parseJson (text: string): unknown {
  try { return JSON.parse(text) } catch { return undefined }
}
