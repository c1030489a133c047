import fp from 'fastify-plugin'
import { Redis, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'

export type SharedTierState = 'up' | 'down'

/**
 * The connection to the shared tier (Redis or Valkey). Commands fail at once
 * while it is down (no offline queue) and after `timeoutMs` when it is slow,
 * so every caller can fall back to L1 and upstream instead of waiting.
 */
export interface SharedTier {
  readonly client: Redis
  /** Prefix of every key and channel (REDIS_PREFIX). */
  readonly prefix: string
  readonly timeoutMs: number
  readonly state: SharedTierState
  /** A new connection for SUBSCRIBE, which can issue no other command; closed with the app. */
  subscriber (): Redis
}

declare module 'fastify' {
  interface FastifyInstance {
    /** undefined unless REDIS_URL is set. */
    redis: SharedTier | undefined
  }
}

/** Reconnects back off with jitter up to 2 s, for ever: when Redis returns, sharing resumes by itself. */
export function reconnectDelay (attempt: number, random = Math.random): number {
  return Math.round(Math.min(2_000, 50 * 2 ** Math.min(attempt, 6)) * (0.5 + random() / 2))
}

export function redisOptions (timeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(1_000, timeoutMs * 5),
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => reconnectDelay(attempt),
    // The URL may carry a password: never let a connection name or error echo it.
    connectionName: 'mj-task-gateway'
  }
}

/**
 * Logs one line per transition, never one per failed command or reconnect
 * attempt. A first connection that fails is a transition too (from starting
 * to down), so a wrong password or host is said once, with its reason; the
 * replica's own shutdown is not.
 */
function watchState (client: Redis, log: FastifyBaseLogger, closing: () => boolean, onChange: (state: SharedTierState) => void): void {
  let state: SharedTierState | 'starting' = 'starting'
  const become = (next: SharedTierState, err?: Error): void => {
    if (next === state) return
    state = next
    onChange(next)
    if (closing()) return
    if (next === 'up') log.info({ redis: 'up' }, 'shared tier (Redis) is up: sharing cache, leases and limits')
    else log.warn({ redis: 'down', reason: err?.message }, 'shared tier (Redis) is down: serving from this replica and upstream')
  }
  client.on('ready', () => become('up'))
  client.on('close', () => become('down'))
  client.on('end', () => become('down'))
  // ioredis emits an error per failed attempt; the transition is the one log line.
  client.on('error', (err: Error) => become('down', err))
}

/**
 * Connects to the shared tier. Start-up never waits for Redis: a replica
 * with Redis down serves from L1 and upstream, and joins in when it comes.
 * `close()` drops every connection it made.
 */
export function connectSharedTier (config: { url: string, prefix: string, timeoutMs: number }, log: FastifyBaseLogger): SharedTier & { close (): void } {
  const { url, prefix, timeoutMs } = config
  const options = redisOptions(timeoutMs)
  const client = new Redis(url, options)
  let state: SharedTierState = 'down'
  let closing = false
  watchState(client, log, () => closing, (next) => { state = next })
  const subscribers = new Set<Redis>()
  const tier = {
    client,
    prefix,
    timeoutMs,
    get state () { return state },
    subscriber () {
      // A subscriber queues SUBSCRIBE until it is connected, however long Redis is away (a replica may start
      // before Redis), never times out waiting for messages, and subscribes again after each reconnect.
      const sub = new Redis(url, {
        ...options,
        enableOfflineQueue: true,
        maxRetriesPerRequest: null,
        commandTimeout: undefined,
        connectionName: 'mj-task-gateway-sub'
      })
      sub.on('error', () => {})
      subscribers.add(sub)
      sub.connect().catch(() => {})
      return sub
    },
    close () {
      closing = true
      for (const sub of subscribers) sub.disconnect()
      client.disconnect()
    }
  }
  client.connect().catch(() => {})
  return tier
}

export const redisPlugin = fp<{ config: GatewayConfig['redis'] }>(async function redisPlugin (app: FastifyInstance, { config }) {
  if (config.url === undefined) {
    app.decorate('redis', undefined)
    return
  }
  const tier = connectSharedTier({ ...config, url: config.url }, app.log.child({ component: 'redis' }))
  app.decorate('redis', tier)
  app.addHook('onClose', async () => { tier.close() })
}, { name: 'redis' })
