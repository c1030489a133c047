/**
 * Simulated CometAPI Midjourney server (see shared/upstream/NOTES.md), used as
 * the gateway's demo upstream, as the test/benchmark fixture, and standalone
 * (`npm run simulator`).
 *
 * API:
 *   createSimulator(opts?: SimulatorOptions): Promise<Simulator>
 *   sim.app                     Fastify instance (inject() works without listening)
 *   sim.options                 the validated, frozen options (incl. the seed actually used)
 *   sim.listen({ port?, host? }) -> Promise<string>   default 127.0.0.1:0; resolves the base URL
 *   sim.close()                 idempotent; destroys open connections (hung ones included), so it never waits
 *   sim.url                     base URL once listening, else null
 *   sim.keys / sim.defaultKey   accepted keys; the default key owns the seeded tasks
 *   sim.seedIds                 SEED_TASK_IDS (see seed.ts for states and timeline)
 *   sim.calls / sim.allCalls    call log: list-by-condition calls / every API call
 *   sim.resetCalls()
 *   sim.faults                  add(spec|spec[]) set(spec|spec[]) clear(id?) list()
 *   sim.now() / sim.advance(ms) simulator clock (opts.now() plus advanced offset)
 *   sim.createTask(key, { prompt, ... }) -> id     submit without HTTP (throws if refused)
 *   sim.getTask(id, key?)       task object as fetch would return it (undefined if unknown/foreign)
 *
 * Routes (all need `Authorization: Bearer <key>` except the image):
 *   POST /mj/submit/imagine, /mj/submit/action, /mj/submit/modal
 *   GET  /mj/task/:id/fetch      POST /mj/task/list-by-condition
 *   GET  /mj/image/:id           SVG, no auth: <img> tags cannot send headers and
 *                                upstream image links are embedded in pages as-is
 * Errors follow new-api: its own checks answer HTTP 400
 * `{description: "<name> ", type: "upstream_error", code: 4}` (trailing space
 * from its `"%s %s"` format), while proxy-level refusals (banned prompt,
 * unknown customId, modal on a non-MODAL task) answer HTTP 200 with a submit
 * body whose code is not 1.
 *
 * Control routes (only with `controlRoute: true`, no auth, never faulted):
 *   GET/POST/PUT/DELETE /_sim/faults   list / add / replace / clear (body: FaultSpec or FaultSpec[])
 *   GET /_sim/calls[?all=1]            DELETE /_sim/calls
 *   POST /_sim/clock {advanceMs}       GET /_sim/state
 */
import { createHash } from 'node:crypto'
import type { Socket } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { UpstreamErrorBody, UpstreamSubmitResult, UpstreamTask } from '../upstream/types.js'
import { FaultController, FaultSpecError, type ActiveFault, type FaultKind, type FaultSpec, type SimRoute, type TerminalFault } from './faults.js'
import { renderTaskSvg } from './image.js'
import { resolveOptions, type ResolvedSimulatorOptions, type SimulatorOptions } from './options.js'
import { createRng, rngUuid, type Rng } from './rng.js'
import { SEED_TASK_IDS, seedDrafts } from './seed.js'
import { buttonDefs, phaseAt, renderTask, TaskStore, type StoredTask, type TaskDraft } from './tasks.js'

export { SEED_TASK_IDS } from './seed.js'
export type { SeedName } from './seed.js'
export { DEFAULT_KEY, DEFAULT_DURATION_MS, DEFAULT_BANNED_WORDS, DEFAULT_FAIL_WORDS } from './options.js'
export type { SimulatorOptions, ResolvedSimulatorOptions } from './options.js'
export { FaultSpecError } from './faults.js'
export type { FaultSpec, FaultKind, SimRoute, ActiveFault, MalformedBody, NormalizedFault } from './faults.js'
export { TASK_TIMEOUT_MS } from './tasks.js'

/** One logged API call. */
export interface SimulatorCall {
  readonly seq: number
  readonly route: SimRoute
  /** Simulator clock when the request arrived. */
  readonly at: number
  /** `key#<index>` for a configured key, null when the key is missing or unknown. */
  readonly keyLabel: string | null
  /** First 12 hex chars of sha256(presented key); null without a Bearer key. Raw keys are never logged. */
  readonly keyHash: string | null
  /** list-by-condition: ids exactly as sent (order and duplicates kept); null if the body had no valid ids list. */
  readonly ids: readonly string[] | null
  /** fetch / image: the path id; action / modal: the body's taskId. */
  readonly taskId: string | null
  /** Terminal fault applied, or 'latency' if only a delay was added. */
  readonly fault: FaultKind | null
  readonly latencyMs: number
  /** HTTP status sent; null while pending or when the request hung. */
  readonly statusCode: number | null
}

export interface ImagineInput {
  prompt: string
  base64Array?: string[]
  botType?: string
  notifyHook?: string
  state?: string
}

export interface FaultControl {
  add (spec: FaultSpec | FaultSpec[]): readonly ActiveFault[]
  set (spec: FaultSpec | FaultSpec[]): readonly ActiveFault[]
  clear (id?: number): void
  list (): readonly ActiveFault[]
}

export interface Simulator {
  readonly app: FastifyInstance
  readonly options: ResolvedSimulatorOptions
  readonly url: string | null
  readonly keys: readonly string[]
  readonly defaultKey: string
  readonly seedIds: typeof SEED_TASK_IDS
  readonly calls: readonly SimulatorCall[]
  readonly allCalls: readonly SimulatorCall[]
  readonly faults: FaultControl
  resetCalls (): void
  now (): number
  advance (ms: number): number
  createTask (key: string, input: ImagineInput): string
  getTask (id: string, key?: string): UpstreamTask | undefined
  listen (opts?: { port?: number, host?: string }): Promise<string>
  close (): Promise<void>
}

/** Thrown by `sim.createTask` when the submission is refused; carries the upstream answer. */
export class SimulatorSubmitError extends Error {
  constructor (readonly status: number, readonly body: UpstreamSubmitResult | UpstreamErrorBody) {
    super(`simulator refused the submission: HTTP ${status} ${JSON.stringify(body)}`)
    this.name = 'SimulatorSubmitError'
  }
}

type Answer = { status: number, body: UpstreamSubmitResult | UpstreamErrorBody }
type MutableCall = { -readonly [K in keyof SimulatorCall]: SimulatorCall[K] }

const BODY_LIMIT = 32 * 1024 * 1024
const CALL_LOG_LIMIT = 100_000

/** new-api's own errors: HTTP 400 and `"<name> "` (its "%s %s" with an empty result). */
function relayError (name: string, status = 400): Answer {
  return { status, body: { description: `${name} `, type: 'upstream_error', code: 4 } }
}

function submitted (code: number, description: string, result: string | null, properties: Record<string, unknown> | null = {}): Answer {
  return { status: 200, body: { code, description, result, properties } }
}

/** JSON object body, or undefined when it is not JSON or not an object (Go's bind fails on both). */
function parseObject (raw: unknown): Record<string, unknown> | undefined {
  if (typeof raw !== 'string') return undefined
  try {
    const v: unknown = JSON.parse(raw)
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

function optString (v: unknown): v is string | undefined | null {
  return v === undefined || v === null || typeof v === 'string'
}

function hashKey (key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12)
}

function bearer (request: FastifyRequest): string | null {
  const h = request.headers.authorization
  if (typeof h !== 'string') return null
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h)
  return m?.[1] ?? null
}

function freezeCall (c: MutableCall): SimulatorCall {
  return Object.freeze({ ...c, ids: c.ids === null ? null : Object.freeze([...c.ids]) })
}

class SimulatorImpl implements Simulator {
  readonly app: FastifyInstance
  readonly options: ResolvedSimulatorOptions
  readonly seedIds = SEED_TASK_IDS
  readonly faults: FaultController
  readonly #store = new TaskStore()
  readonly #rng: Rng
  readonly #calls: MutableCall[] = []
  readonly #pending = new WeakMap<object, MutableCall>()
  readonly #hung = new Set<Socket>()
  #callSeq = 0
  #reads = 0
  #offset = 0
  #url: string | null = null
  #closing: Promise<void> | null = null

  constructor (options: ResolvedSimulatorOptions) {
    this.options = options
    this.#rng = createRng(options.seed)
    this.faults = new FaultController(options.faults)
    // forceCloseConnections: close() must not wait for hung requests or clients' spare sockets.
    this.app = Fastify({ logger: options.logger, bodyLimit: BODY_LIMIT, forceCloseConnections: true })
    if (options.seedTasks) {
      for (const draft of seedDrafts(this.defaultKey, this.now())) this.#store.insert(draft)
    }
    this.#registerPlumbing()
    this.#registerRoutes()
    if (options.controlRoute) this.#registerControl()
  }

  get url (): string | null { return this.#url }
  get keys (): readonly string[] { return this.options.keys }
  get defaultKey (): string { return this.options.keys[0] as string }
  get calls (): readonly SimulatorCall[] {
    return Object.freeze(this.#calls.filter((c) => c.route === 'list-by-condition').map(freezeCall))
  }

  get allCalls (): readonly SimulatorCall[] { return Object.freeze(this.#calls.map(freezeCall)) }

  resetCalls (): void { this.#calls.length = 0 }

  now (): number { return this.options.now() + this.#offset }

  advance (ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance(ms) needs a non-negative number, got ${String(ms)}`)
    this.#offset += ms
    return this.now()
  }

  createTask (key: string, input: ImagineInput): string {
    if (!this.options.keys.includes(key)) throw new RangeError('createTask: unknown key (not in the simulator keys)')
    const answer = this.#imagine(key, input as unknown as Record<string, unknown>)
    const body = answer.body as UpstreamSubmitResult
    if (answer.status !== 200 || body.code !== 1 || body.result === null) throw new SimulatorSubmitError(answer.status, answer.body)
    return body.result
  }

  getTask (id: string, key?: string): UpstreamTask | undefined {
    const task = key === undefined ? this.#store.get(id) : this.#store.owned(id, key)
    return task === undefined ? undefined : this.#render(task, this.options.baseUrl ?? this.#url ?? 'http://127.0.0.1')
  }

  async listen ({ port = 0, host = '127.0.0.1' }: { port?: number, host?: string } = {}): Promise<string> {
    await this.app.listen({ port, host })
    const addr = this.app.server.address()
    const actualPort = typeof addr === 'object' && addr !== null ? addr.port : port
    // Wildcard binds are reachable on loopback; print something a client can use.
    const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
    this.#url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${actualPort}`
    return this.#url
  }

  close (): Promise<void> {
    this.#closing ??= (async () => {
      // Hung requests would keep server.close() waiting forever.
      for (const socket of this.#hung) socket.destroy()
      this.#hung.clear()
      await this.app.close()
    })()
    return this.#closing
  }

  // ---- request plumbing -------------------------------------------------

  #registerPlumbing (): void {
    // Bodies are parsed by the handlers so that non-JSON gets upstream's error body, not Fastify's.
    this.app.removeAllContentTypeParsers()
    this.app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => { done(null, body) })
    this.app.addHook('onResponse', async (request, reply) => {
      const call = this.#pending.get(request.raw)
      if (call !== undefined) call.statusCode = reply.statusCode
    })
  }

  #keyOf (request: FastifyRequest): string | null {
    const key = bearer(request)
    return key !== null && this.options.keys.includes(key) ? key : null
  }

  #baseUrl (request: FastifyRequest): string {
    return this.options.baseUrl ?? `${request.protocol}://${request.host}`
  }

  #record (route: SimRoute, request: FastifyRequest): MutableCall {
    const key = bearer(request)
    const index = key === null ? -1 : this.options.keys.indexOf(key)
    let ids: string[] | null = null
    let taskId: string | null = null
    if (route === 'list-by-condition') {
      const list = parseObject(request.body)?.ids
      if (Array.isArray(list) && list.every((x) => typeof x === 'string')) ids = list
    } else if (route === 'fetch' || route === 'image') {
      taskId = (request.params as { id?: string }).id ?? null
    } else if (route === 'action' || route === 'modal') {
      const v = parseObject(request.body)?.taskId
      taskId = typeof v === 'string' ? v : null
    }
    const call: MutableCall = {
      seq: ++this.#callSeq,
      route,
      at: this.now(),
      keyLabel: index >= 0 ? `key#${index}` : null,
      keyHash: key === null ? null : hashKey(key),
      ids,
      taskId,
      fault: null,
      latencyMs: 0,
      statusCode: null
    }
    // Bounded so a long benchmark cannot grow memory without limit.
    if (this.#calls.length >= CALL_LOG_LIMIT) this.#calls.shift()
    this.#calls.push(call)
    this.#pending.set(request.raw, call)
    return call
  }

  /** preHandler for API routes: log, apply faults, then check the key. */
  #guard (route: SimRoute, auth: boolean) {
    return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
      const call = this.#record(route, request)
      const { latencyMs, terminal } = this.faults.take(route)
      const delay = this.options.latencyMs + latencyMs
      call.latencyMs = delay
      call.fault = terminal?.kind ?? (latencyMs > 0 ? 'latency' : null)
      if (delay > 0) await this.options.sleep(delay)
      if (terminal !== null) return this.#applyFault(terminal, request, reply)
      if (auth && this.#keyOf(request) === null) {
        return reply.code(401).send({ description: 'invalid_token', type: 'upstream_error', code: 4 } satisfies UpstreamErrorBody)
      }
      return undefined
    }
  }

  #applyFault (fault: TerminalFault, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    switch (fault.kind) {
      case 'error':
        return reply.code(fault.status).send({ description: fault.description, type: 'upstream_error', code: fault.code } satisfies UpstreamErrorBody)
      case 'rate-limit':
        // new-api answers a saturated group with code 30 and HTTP 429.
        return reply.code(429).header('retry-after', String(fault.retryAfterSeconds))
          .send({ description: 'rate_limited Current group load is saturated, please try again later', type: 'upstream_error', code: 30 } satisfies UpstreamErrorBody)
      case 'hang': {
        // Take the socket away from Fastify and never answer; close() destroys it.
        reply.hijack()
        const socket = request.raw.socket
        this.#hung.add(socket)
        socket.once('close', () => this.#hung.delete(socket))
        if (this.#closing !== null) socket.destroy()
        return reply
      }
      case 'malformed': {
        reply.code(fault.status)
        switch (fault.body) {
          case 'text': return reply.type('text/plain; charset=utf-8').send('upstream temporarily unavailable')
          case 'html': return reply.type('text/html; charset=utf-8').send('<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>')
          case 'object': return reply.type('application/json').send('{"data":[],"message":"ok"}')
          case 'truncated': return reply.type('application/json').send('[{"id":"1700000000000101","status":"SUCC')
          case 'empty': return reply.type('application/json').send('')
        }
      }
    }
  }

  #render (task: StoredTask, baseUrl: string): UpstreamTask {
    const t = this.now()
    return renderTask(task, t, baseUrl, () => `${t}${String(++this.#reads).padStart(6, '0')}`)
  }

  #send (reply: FastifyReply, answer: Answer): FastifyReply {
    return reply.code(answer.status).send(answer.body)
  }

  #registerRoutes (): void {
    const app = this.app
    app.post('/mj/submit/imagine', { preHandler: this.#guard('imagine', true) }, async (request, reply) => {
      const body = parseObject(request.body)
      return this.#send(reply, body === undefined ? relayError('bind_request_body_failed') : this.#imagine(this.#keyOf(request) as string, body))
    })
    app.post('/mj/submit/action', { preHandler: this.#guard('action', true) }, async (request, reply) => {
      const body = parseObject(request.body)
      return this.#send(reply, body === undefined ? relayError('bind_request_body_failed') : this.#action(this.#keyOf(request) as string, body))
    })
    app.post('/mj/submit/modal', { preHandler: this.#guard('modal', true) }, async (request, reply) => {
      const body = parseObject(request.body)
      return this.#send(reply, body === undefined ? relayError('bind_request_body_failed') : this.#modal(this.#keyOf(request) as string, body))
    })
    app.get<{ Params: { id: string } }>('/mj/task/:id/fetch', { preHandler: this.#guard('fetch', true) }, async (request, reply) => {
      const task = this.#store.owned(request.params.id, this.#keyOf(request) as string)
      if (task === undefined) return this.#send(reply, relayError('task_no_found'))
      return reply.send(this.#render(task, this.#baseUrl(request)))
    })
    app.post('/mj/task/list-by-condition', { preHandler: this.#guard('list-by-condition', true) }, async (request, reply) => {
      const ids = this.#parseIds(request.body)
      if (ids === undefined) return this.#send(reply, relayError('do_request_failed'))
      const base = this.#baseUrl(request)
      return reply.send(this.#store.listOwned(ids, this.#keyOf(request) as string).map((t) => this.#render(t, base)))
    })
    app.get<{ Params: { id: string } }>('/mj/image/:id', { preHandler: this.#guard('image', false) }, async (request, reply) => {
      const task = this.#store.get(request.params.id)
      if (task === undefined) return this.#send(reply, relayError('task_no_found', 404))
      const phase = phaseAt(task, this.now())
      const svg = renderTaskSvg({ id: task.id, prompt: task.prompt, status: phase.status, progress: phase.progress, tiles: task.tiles })
      // Finished images never change; previews must not be cached.
      reply.header('cache-control', phase.status === 'SUCCESS' ? 'public, max-age=86400, immutable' : 'no-store')
      return reply.type('image/svg+xml').send(Buffer.from(svg))
    })
  }

  /** list-by-condition body → ids; undefined = not bindable (400). Missing/null ids → []. */
  #parseIds (raw: unknown): string[] | undefined {
    if (typeof raw !== 'string') return undefined
    let v: unknown
    try {
      v = JSON.parse(raw)
    } catch {
      return undefined
    }
    if (v === null) return []
    if (typeof v !== 'object' || Array.isArray(v)) return undefined
    const ids = (v as { ids?: unknown }).ids
    if (ids === undefined || ids === null) return []
    if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) return undefined
    return ids
  }

  // ---- submissions --------------------------------------------------------

  #matchWord (prompt: string, words: readonly string[]): string | undefined {
    const p = prompt.toLowerCase()
    return words.find((w) => p.includes(w))
  }

  /** Timeline for a new task: 10% queued, 10% submitted, 80% rendering. */
  #timeline (prompt: string): Pick<TaskDraft, 'submitTime' | 'startAt' | 'runAt' | 'doneAt' | 'endAt' | 'outcome' | 'failReason' | 'frozen'> {
    const t = this.now()
    const d = this.options.durationMs
    const runAt = t + Math.round(d * 0.2)
    const doneAt = t + d
    const failWord = this.#matchWord(prompt, this.options.failWords)
    return {
      submitTime: t,
      startAt: t + Math.round(d * 0.1),
      runAt,
      doneAt,
      endAt: failWord === undefined ? doneAt : runAt + Math.round((doneAt - runAt) / 2),
      outcome: failWord === undefined ? 'SUCCESS' : 'FAILURE',
      failReason: failWord === undefined ? '' : `Simulated failure: the prompt contains "${failWord}"`,
      frozen: false
    }
  }

  #bannedAnswer (prompt: string): Answer | undefined {
    const word = this.#matchWord(prompt, this.options.bannedWords)
    if (word === undefined) return undefined
    return submitted(24, 'May contain banned words', null, { promptEn: prompt, bannedWord: word })
  }

  #insert (key: string, fields: { action: string, prompt: string, state: string, layout: 'grid' | 'single', tiles?: readonly string[], parentId: string | null, modalAction?: string }): StoredTask {
    const id = this.#store.newId(this.now(), this.#rng)
    const timeline = this.#timeline(fields.prompt)
    const modal = fields.modalAction !== undefined
    return this.#store.insert({
      id,
      owner: key,
      action: fields.action,
      prompt: fields.prompt,
      promptEn: fields.prompt,
      description: 'Submit success',
      state: fields.state,
      hash: rngUuid(this.#rng),
      layout: fields.layout,
      tiles: fields.tiles ?? [1, 2, 3, 4].map((n) => `${id}|${fields.prompt}|${n}`),
      parentId: fields.parentId,
      modalAction: fields.modalAction ?? null,
      ...timeline,
      // A modal task waits for /mj/submit/modal; it does not render.
      ...(modal ? { outcome: 'MODAL' as const, endAt: timeline.submitTime, failReason: '' } : {})
    })
  }

  #imagine (key: string, body: Record<string, unknown>): Answer {
    const { prompt, base64Array, botType, notifyHook, state } = body
    if (!optString(prompt) || !optString(botType) || !optString(notifyHook) || !optString(state)) return relayError('bind_request_body_failed')
    if (base64Array !== undefined && base64Array !== null && (!Array.isArray(base64Array) || !base64Array.every((s) => typeof s === 'string'))) {
      return relayError('bind_request_body_failed')
    }
    if (prompt === undefined || prompt === null || prompt.trim() === '') return relayError('prompt_is_required')
    if (Array.isArray(base64Array) && !base64Array.every((s: string) => /^data:[\w.+-]+\/[\w.+-]+;base64,[A-Za-z0-9+/=\s]+$/.test(s))) {
      return submitted(4, 'base64 format error', null)
    }
    if (botType !== undefined && botType !== null && botType !== 'MID_JOURNEY' && botType !== 'NIJI_JOURNEY') {
      return submitted(4, 'botType must be MID_JOURNEY or NIJI_JOURNEY', null)
    }
    const banned = this.#bannedAnswer(prompt)
    if (banned !== undefined) return banned
    const task = this.#insert(key, { action: 'IMAGINE', prompt, state: state ?? '', layout: 'grid', parentId: null })
    return submitted(1, 'Submit success', task.id, { discordInstanceId: 'simulator', discordChannelId: 'simulator' })
  }

  #action (key: string, body: Record<string, unknown>): Answer {
    const { taskId, customId, state, notifyHook } = body
    if (!optString(taskId) || !optString(customId) || !optString(state) || !optString(notifyHook)) return relayError('bind_request_body_failed')
    if (customId === undefined || customId === null || customId === '') return relayError('custom_id_is_required')
    const parts = customId.split('::')
    if (parts.length < 3 || parts[0] !== 'MJ' || parts[1] === '') return relayError('unknown_action')
    if (taskId === undefined || taskId === null || taskId === '') return relayError('task_id_is_required')
    const parent = this.#store.owned(taskId, key)
    if (parent === undefined) return relayError('task_not_found')
    if (phaseAt(parent, this.now()).status !== 'SUCCESS') return relayError('task_status_not_success')
    const button = buttonDefs(parent).find((b) => b.customId === customId)
    if (button === undefined) return submitted(4, 'Invalid customId: no such button on the task', null)
    const single = button.action === 'UPSCALE' || button.modal
    const task = this.#insert(key, {
      action: button.action,
      prompt: parent.prompt,
      state: state ?? '',
      layout: single ? 'single' : 'grid',
      // An upscale shows the grid tile it came from; modal tasks keep the parent's picture.
      tiles: button.action === 'UPSCALE' && parent.layout === 'grid' ? [parent.tiles[button.index - 1] ?? parent.id] : single ? parent.tiles : undefined,
      parentId: parent.id,
      ...(button.modal ? { modalAction: button.action } : {})
    })
    // Proxies answer 21 for buttons that open a modal; new-api passes 21 through only for those.
    return button.modal
      ? submitted(21, 'Waiting for window confirm', task.id, { finalPrompt: parent.prompt, remix: true })
      : submitted(1, 'Submit success', task.id, { discordInstanceId: 'simulator', discordChannelId: 'simulator' })
  }

  #modal (key: string, body: Record<string, unknown>): Answer {
    const { taskId, prompt, maskBase64 } = body
    if (!optString(taskId) || !optString(prompt) || !optString(maskBase64)) return relayError('bind_request_body_failed')
    if (taskId === undefined || taskId === null || taskId === '') return relayError('task_id_is_required')
    const parent = this.#store.owned(taskId, key)
    if (parent === undefined) return relayError('task_not_found')
    if (phaseAt(parent, this.now()).status !== 'MODAL') return submitted(4, 'Task status error: the task is not waiting in MODAL', null)
    if (parent.modalAction === 'INPAINT' && (maskBase64 === undefined || maskBase64 === null || maskBase64 === '')) {
      return submitted(4, "maskBase64 can't be empty", null)
    }
    const finalPrompt = prompt === undefined || prompt === null || prompt.trim() === '' ? parent.prompt : prompt
    const banned = this.#bannedAnswer(finalPrompt)
    if (banned !== undefined) return banned
    // new-api records a modal submission as its own task with action MODAL.
    const task = this.#insert(key, { action: 'MODAL', prompt: finalPrompt, state: parent.state, layout: 'grid', parentId: parent.id })
    return submitted(1, 'Submit success', task.id, { discordInstanceId: 'simulator', discordChannelId: 'simulator' })
  }

  // ---- control routes -----------------------------------------------------

  #registerControl (): void {
    const app = this.app
    const specFrom = (raw: unknown): FaultSpec | FaultSpec[] | undefined => {
      if (typeof raw !== 'string') return undefined
      try {
        return JSON.parse(raw) as FaultSpec | FaultSpec[]
      } catch {
        return undefined
      }
    }
    const mutate = (op: 'add' | 'set') => async (request: FastifyRequest, reply: FastifyReply) => {
      const spec = specFrom(request.body)
      if (spec === undefined) return reply.code(400).send({ description: 'body must be a JSON fault spec or an array of them', type: 'simulator_error', code: 4 })
      try {
        return { faults: this.faults[op](spec) }
      } catch (err) {
        if (err instanceof FaultSpecError) return reply.code(400).send({ description: err.message, type: 'simulator_error', code: 4 })
        throw err
      }
    }
    app.get('/_sim/faults', async () => ({ faults: this.faults.list() }))
    app.post('/_sim/faults', mutate('add'))
    app.put('/_sim/faults', mutate('set'))
    app.delete('/_sim/faults', async () => {
      this.faults.clear()
      return { faults: [] }
    })
    app.get<{ Querystring: { all?: string } }>('/_sim/calls', async (request) => ({
      calls: request.query.all === '1' || request.query.all === 'true' ? this.allCalls : this.calls
    }))
    app.delete('/_sim/calls', async () => {
      this.resetCalls()
      return { calls: [] }
    })
    app.post('/_sim/clock', async (request, reply) => {
      const ms = parseObject(request.body)?.advanceMs
      if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
        return reply.code(400).send({ description: 'body must be {"advanceMs": <non-negative number>}', type: 'simulator_error', code: 4 })
      }
      return { now: this.advance(ms) }
    })
    app.get('/_sim/state', async () => ({
      now: this.now(),
      url: this.#url,
      keyLabels: this.options.keys.map((_k, i) => `key#${i}`),
      seedIds: SEED_TASK_IDS,
      tasks: this.#store.size,
      durationMs: this.options.durationMs,
      faults: this.faults.list()
    }))
  }
}

/** Build a simulator (not listening yet: call `listen()`, or use `app.inject()`). */
export async function createSimulator (opts?: SimulatorOptions): Promise<Simulator> {
  return new SimulatorImpl(resolveOptions(opts))
}
