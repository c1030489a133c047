/**
 * Simulated CometAPI Midjourney server (see docs/upstream.md), used as
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
 *   sim.keepAliveIds()          with `keepAlive`: the tasks it started and keeps, newest first
 *                               (a look: starts one if due; see keep-alive.ts)
 *
 * Routes (all need `Authorization: Bearer <key>` except the image):
 *   POST /mj/submit/imagine, /mj/submit/action, /mj/submit/modal,
 *        /mj/submit/describe, /mj/submit/blend
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
 *
 * This file wires the API routes; the rest lives beside it: submit.ts (what
 * a submission answers and creates), tasks.ts (storage and lifecycle),
 * faults.ts / apply-fault.ts (which faults match / how they answer),
 * calls.ts (call log), control.ts (/_sim routes), wire.ts (body parsing and
 * error shapes), options.ts, seed.ts, image.ts.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { bearerToken } from '../core/credentials.js'
import type { UpstreamErrorBody, UpstreamSubmitResult, UpstreamTask } from '../upstream/types.js'
import { applyFault, appliedFaults, HungSockets } from './apply-fault.js'
import { CallLog, type SimulatorCall } from './calls.js'
import { registerControlRoutes } from './control.js'
import { FaultController, type FaultControl, type SimRoute } from './faults.js'
import { renderTaskSvg } from './image.js'
import { KEEP_ALIVE_PROMPTS, KeepAlive } from './keep-alive.js'
import { resolveOptions, type ResolvedSimulatorOptions, type SimulatorOptions } from './options.js'
import { createRng, rngUuid, type Rng } from './rng.js'
import { SEED_TASK_IDS, seedDrafts } from './seed.js'
import { acceptedAnswer, buildDraft, decideAction, decideBlend, decideDescribe, decideImagine, decideModal, SimulatorSubmitError, type Decision, type ImagineInput, type SubmitContext } from './submit.js'
import { buttonDefs, phaseAt, renderTask, TaskStore, type StoredTask } from './tasks.js'
import { parseIds, parseObject, relayError, type Answer } from './wire.js'

export { SEED_TASK_IDS } from './seed.js'
export type { SeedName } from './seed.js'
export { DEFAULT_KEY, DEFAULT_DURATION_MS, DEFAULT_BANNED_WORDS, DEFAULT_FAIL_WORDS } from './options.js'
export type { SimulatorOptions, ResolvedSimulatorOptions } from './options.js'
export { FaultSpecError } from './faults.js'
export type { FaultControl, FaultSpec, FaultKind, SimRoute, ActiveFault, MalformedBody, NormalizedFault } from './faults.js'
export { TASK_TIMEOUT_MS } from './tasks.js'
export { DEFAULT_KEEP_ALIVE, KEEP_ALIVE_PROMPTS } from './keep-alive.js'
export type { KeepAliveOptions } from './keep-alive.js'
export { SimulatorSubmitError } from './submit.js'
export type { ImagineInput } from './submit.js'
export type { SimulatorCall } from './calls.js'

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
  keepAliveIds (): readonly string[]
  listen (opts?: { port?: number, host?: string }): Promise<string>
  close (): Promise<void>
}

type Decide = (body: Record<string, unknown>, ctx: SubmitContext) => Decision

const BODY_LIMIT = 32 * 1024 * 1024

class SimulatorImpl implements Simulator {
  readonly app: FastifyInstance
  readonly options: ResolvedSimulatorOptions
  readonly seedIds = SEED_TASK_IDS
  readonly faults: FaultController
  readonly #store = new TaskStore()
  readonly #rng: Rng
  readonly #log: CallLog
  readonly #hung = new HungSockets()
  readonly #keepAlive: KeepAlive | null
  #reads = 0
  #offset = 0
  #url: string | null = null
  #closing: Promise<void> | null = null

  constructor (options: ResolvedSimulatorOptions) {
    this.options = options
    this.#rng = createRng(options.seed)
    this.faults = new FaultController(options.faults)
    this.#log = new CallLog(options.keys)
    this.#keepAlive = options.keepAlive === null
      ? null
      : new KeepAlive(options.keepAlive, this.now(), { start: (n) => this.#startDemoTask(n), forget: (id) => this.#store.delete(id) })
    // forceCloseConnections: close() must not wait for hung requests or clients' spare sockets.
    this.app = Fastify({ logger: options.logger, bodyLimit: BODY_LIMIT, forceCloseConnections: true })
    if (options.seedTasks) {
      for (const draft of seedDrafts(this.defaultKey, this.now())) this.#store.insert(draft)
    }
    this.#registerPlumbing()
    this.#registerRoutes()
    if (options.controlRoute) registerControlRoutes(this.app, this, () => this.#store.size)
  }

  get url (): string | null { return this.#url }
  get keys (): readonly string[] { return this.options.keys }
  get defaultKey (): string { return this.options.keys[0] as string }
  get calls (): readonly SimulatorCall[] { return this.#log.listCalls() }
  get allCalls (): readonly SimulatorCall[] { return this.#log.all() }

  resetCalls (): void { this.#log.reset() }

  now (): number { return this.options.now() + this.#offset }

  advance (ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance(ms) needs a non-negative number, got ${String(ms)}`)
    this.#offset += ms
    return this.now()
  }

  createTask (key: string, input: ImagineInput): string {
    if (!this.options.keys.includes(key)) throw new RangeError('createTask: unknown key (not in the simulator keys)')
    const answer = this.#submit(decideImagine, key, input as unknown as Record<string, unknown>)
    const body = answer.body as UpstreamSubmitResult
    if (answer.status !== 200 || body.code !== 1 || body.result === null) throw new SimulatorSubmitError(answer.status, answer.body)
    return body.result
  }

  getTask (id: string, key?: string): UpstreamTask | undefined {
    const task = key === undefined ? this.#store.get(id) : this.#store.owned(id, key)
    return task === undefined ? undefined : this.#render(task, this.options.baseUrl ?? this.#url ?? 'http://127.0.0.1')
  }

  keepAliveIds (): readonly string[] {
    if (this.#keepAlive === null) return []
    this.#keepAlive.touch(this.now())
    return this.#keepAlive.ids()
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
      this.#hung.destroyAll()
      await this.app.close()
    })()
    return this.#closing
  }

  // ---- request plumbing -------------------------------------------------

  #registerPlumbing (): void {
    // Bodies are parsed by the handlers so that non-JSON gets upstream's error body, not Fastify's.
    this.app.removeAllContentTypeParsers()
    this.app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => { done(null, body) })
    this.app.addHook('onResponse', async (request, reply) => { this.#log.answered(request.raw, reply.statusCode) })
  }

  #keyOf (request: FastifyRequest): string | null {
    const key = bearerToken(request.headers.authorization)
    return key !== undefined && this.options.keys.includes(key) ? key : null
  }

  #baseUrl (request: FastifyRequest): string {
    return this.options.baseUrl ?? `${request.protocol}://${request.host}`
  }

  /** preHandler for API routes: log, apply faults, then check the key. */
  #guard (route: SimRoute, auth: boolean) {
    return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
      const call = this.#log.record(route, {
        at: this.now(),
        key: bearerToken(request.headers.authorization),
        params: request.params,
        body: request.body,
        raw: request.raw
      })
      const applied = appliedFaults(this.options.latencyMs, this.faults.take(route))
      call.latencyMs = applied.delayMs
      call.fault = applied.fault
      if (applied.delayMs > 0) await this.options.sleep(applied.delayMs)
      if (applied.terminal !== null) return applyFault(applied.terminal, request, reply, this.#hung)
      if (auth && this.#keyOf(request) === null) {
        return reply.code(401).send({ description: 'invalid_token', type: 'upstream_error', code: 4 } satisfies UpstreamErrorBody)
      }
      this.#keepAlive?.touch(this.now())
      return undefined
    }
  }

  #render (task: StoredTask, baseUrl: string): UpstreamTask {
    const t = this.now()
    return renderTask(task, t, baseUrl, () => `${t}${String(++this.#reads).padStart(6, '0')}`)
  }

  #send (reply: FastifyReply, answer: Answer): FastifyReply {
    return reply.code(answer.status).send(answer.body)
  }

  /** Decide a submission, and store its task if accepted. */
  #submit (decide: Decide, key: string, body: Record<string, unknown>): Answer {
    const ctx: SubmitContext = {
      now: this.now(),
      durationMs: this.options.durationMs,
      bannedWords: this.options.bannedWords,
      failWords: this.options.failWords,
      ownedTask: (id) => this.#store.owned(id, key)
    }
    const decision = decide(body, ctx)
    if (!decision.accepted) return decision.answer
    // Id first, then hash: the rng draw order keeps ids stable for a given seed.
    const id = this.#store.newId(ctx.now, this.#rng)
    const task = this.#store.insert(buildDraft(decision.plan, { id, hash: rngUuid(this.#rng), owner: key }, ctx))
    return acceptedAnswer(decision.plan, task.id)
  }

  /**
   * The `n`th keep-alive task, owned by the default key: an imagine with the
   * next prompt, or (every third) an upscale of the newest finished grid, so
   * follow-up actions show up too.
   */
  #startDemoTask (n: number): string | undefined {
    const key = this.defaultKey
    let answer: Answer | undefined
    if (n % 3 === 2) {
      const now = this.now()
      const parent = this.#keepAlive?.ids().map((id) => this.#store.get(id))
        .find((task) => task !== undefined && task.layout === 'grid' && phaseAt(task, now).status === 'SUCCESS')
      const button = parent === undefined ? undefined : buttonDefs(parent)[Math.floor(n / 3) % 4]
      if (parent !== undefined && button !== undefined) answer = this.#submit(decideAction, key, { taskId: parent.id, customId: button.customId })
    }
    answer ??= this.#submit(decideImagine, key, { prompt: KEEP_ALIVE_PROMPTS[n % KEEP_ALIVE_PROMPTS.length] })
    const body = answer.body as UpstreamSubmitResult
    return answer.status === 200 && body.code === 1 && typeof body.result === 'string' ? body.result : undefined
  }

  #registerRoutes (): void {
    const app = this.app
    const submitRoute = (route: SimRoute, decide: Decide) => {
      app.post(`/mj/submit/${route}`, { preHandler: this.#guard(route, true) }, async (request, reply) => {
        const body = parseObject(request.body)
        return this.#send(reply, body === undefined ? relayError('bind_request_body_failed') : this.#submit(decide, this.#keyOf(request) as string, body))
      })
    }
    submitRoute('imagine', decideImagine)
    submitRoute('action', decideAction)
    submitRoute('modal', decideModal)
    submitRoute('describe', decideDescribe)
    submitRoute('blend', decideBlend)
    app.get<{ Params: { id: string } }>('/mj/task/:id/fetch', { preHandler: this.#guard('fetch', true) }, async (request, reply) => {
      const task = this.#store.owned(request.params.id, this.#keyOf(request) as string)
      if (task === undefined) return this.#send(reply, relayError('task_no_found'))
      return reply.send(this.#render(task, this.#baseUrl(request)))
    })
    app.post('/mj/task/list-by-condition', { preHandler: this.#guard('list-by-condition', true) }, async (request, reply) => {
      const ids = parseIds(request.body)
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
}

/** Build a simulator (not listening yet: call `listen()`, or use `app.inject()`). */
export async function createSimulator (opts?: SimulatorOptions): Promise<Simulator> {
  return new SimulatorImpl(resolveOptions(opts))
}
