import { createHash } from 'node:crypto'
import { PassThrough } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { checkIds, IDS_QUERYSTRING, queryIds, type IdsQuery } from '../core/ids.js'
import { withNullTimes } from '../core/task-rules.js'
import { type WatchEvent, type WatchHandle } from '../core/watcher.js'

export const STREAM_PATH = '/v1/tasks/stream'

/** Marks in an event id: nothing delivered yet, and an id that left the stream (unknown upstream, or its lookup refused). */
const NONE = '*'
const GONE = '!'
const EVENT_ID = /^1:([A-Za-z0-9_-]{8}):([A-Za-z0-9_\-*!.]*)$/

/** Identifies the id list, so an event id is only read back against the list it was made for. */
function listHash (ids: readonly string[]): string {
  return createHash('sha256').update(ids.join(',')).digest('base64url').slice(0, 8)
}

/**
 * The SSE resume scheme. Every event id carries the whole delivered state of
 * the stream: `1:<list hash>:<v0>.<v1>...`, one slot per requested id in
 * request order, holding the task version last sent for it, `*` when nothing
 * was sent yet, or `!` when the id left with a final error. EventSource sends the
 * last id back as `Last-Event-ID` on its own reconnect (same URL), so a
 * reconnect, to this instance or any other, knows exactly what the client
 * has: equal versions are not sent again and `!` ids are not watched again.
 * No server state survives a disconnect, and none needs to.
 */
export function encodeEventId (hash: string, slots: readonly string[]): string {
  return `1:${hash}:${slots.join('.')}`
}

/** The slots of a Last-Event-ID made for this id list, or undefined (ignored: the stream starts fresh). */
export function decodeEventId (header: unknown, hash: string, count: number): string[] | undefined {
  if (typeof header !== 'string') return undefined
  const match = EVENT_ID.exec(header.trim())
  if (match === null || match[1] !== hash) return undefined
  const slots = match[2]!.split('.')
  return slots.length === count ? slots : undefined
}

function frame (event: string, data: unknown, id?: string): string {
  return `event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`
}

/**
 * `GET /v1/tasks/stream?ids=a,b`: live task updates as Server-Sent Events,
 * fed by the shared watcher. `task` events carry the task JSON (first the
 * current state, then each change), `error` events an id's failure, a `: ping`
 * comment goes out every SSE_HEARTBEAT_MS, and `done` ends the stream once
 * every task is final. Limits are checked before the stream opens, so a
 * refusal is an ordinary JSON error response.
 */
export default async function streamRoutes (app: FastifyInstance): Promise<void> {
  const { config } = app.gateway

  app.get<{ Querystring: { ids?: IdsQuery } }>(STREAM_PATH, {
    schema: { querystring: IDS_QUERYSTRING }
  }, async function (request, reply) {
    const ids = [...new Set(checkIds(queryIds(request.query.ids), config.limits))]
    if (ids.length === 0) throw new errors.BadRequest('ids must name at least one task')
    const hash = listHash(ids)
    const slots = decodeEventId(request.headers['last-event-id'], hash, ids.length) ?? ids.map(() => NONE)
    const seen = new Map<string, string>()
    const watched: string[] = []
    ids.forEach((id, i) => {
      if (slots[i] === GONE) return
      watched.push(id)
      if (slots[i] !== NONE) seen.set(id, slots[i]!)
    })
    const position = new Map(ids.map((id, i) => [id, i]))

    const stream = new PassThrough()
    let handle: WatchHandle | undefined
    let heartbeat: NodeJS.Timeout | undefined
    const finish = (): void => {
      if (heartbeat !== undefined) clearInterval(heartbeat)
      heartbeat = undefined
      handle?.close()
      if (!stream.writableEnded) stream.end()
    }
    const onEvent = (event: WatchEvent): void => {
      switch (event.type) {
        case 'task':
          slots[position.get(event.id)!] = event.version
          // `""` times as null, as on every /v1/tasks route.
          stream.write(frame('task', withNullTimes(event.task), encodeEventId(hash, slots)))
          break
        case 'error': {
          // Final: unknown upstream, or the credential was refused (4xx); either way not watched again on resume.
          const data = { id: event.id, code: event.error.code, message: event.error.message, ...(event.final ? {} : { retrying: true }) }
          if (event.final) slots[position.get(event.id)!] = GONE
          // A passing outage changes nothing the client has, so it moves no event id.
          stream.write(frame('error', data, event.final ? encodeEventId(hash, slots) : undefined))
          break
        }
        case 'done':
          stream.write(frame('done', {}))
          finish()
          break
        case 'shutdown':
          // No `done`: the client reconnects (elsewhere) and resumes from its last event id.
          stream.write(': shutting down\n\n')
          finish()
          break
      }
    }

    if (watched.length > 0) {
      // Throws the limit errors (400/429/503) while a JSON answer can still be sent.
      handle = app.watcher.watch({ ids: watched, scope: request.scope, client: app.security.client(request), seen, onEvent })
      heartbeat = setInterval(() => { stream.write(': ping\n\n') }, config.watch.heartbeatMs)
      heartbeat.unref()
    } else {
      // Every id left with a final error before the reconnect: nothing left to watch.
      queueMicrotask(() => onEvent({ type: 'done' }))
    }
    // Client gone mid-stream: release the watch at once, whatever side noticed first.
    reply.raw.once('close', finish)
    stream.once('close', finish)

    void reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache, no-transform')
      .header('x-accel-buffering', 'no')
    // First bytes at once, so clients and proxies see the stream open before any task changes.
    stream.write(': stream open\n\n')
    return reply.send(stream)
  })
}
