import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { UpstreamTask } from '../../src/upstream/types.js'

/** One list-by-condition call as the fake upstream received it. */
export interface UpstreamCall {
  ids: string[]
  authorization: string | undefined
}

/** What the fake does with one call; the default answers from `tasks`. */
export type Behaviour =
  | { kind: 'tasks' }
  | { kind: 'status', status: number, body?: string, headers?: Record<string, string> }
  | { kind: 'raw', body: string, contentType?: string }
  | { kind: 'json', body: unknown }
  | { kind: 'hang' }
  | { kind: 'reset' }

/**
 * A CometAPI stand-in on 127.0.0.1 for tests: real HTTP, an exact log of the
 * calls it received, answers in storage order with unknown ids left out (as
 * upstream), scripted faults, and a gate that holds answers until released.
 */
export class FakeUpstream {
  readonly tasks = new Map<string, UpstreamTask>()
  /** Optional owner per task id: when set, only that bearer token sees the task. */
  readonly owners = new Map<string, string>()
  readonly calls: UpstreamCall[] = []
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  readonly #script: Behaviour[] = []
  #gate: Promise<void> | undefined
  #openGate: (() => void) | undefined
  #waiters: Array<() => void> = []
  url = ''

  constructor () {
    this.#server = createServer((req, res) => { this.#handle(req, res).catch(() => res.destroy()) })
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
  }

  static async start (): Promise<FakeUpstream> {
    const fake = new FakeUpstream()
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve))
    fake.url = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}`
    return fake
  }

  /** Adds tasks with sensible defaults; returns their ids. */
  add (...tasks: Array<Partial<UpstreamTask> & { id: string }>): string[] {
    for (const t of tasks) this.tasks.set(t.id, { status: 'IN_PROGRESS', progress: '31%', action: 'IMAGINE', ...t })
    return tasks.map((t) => t.id)
  }

  /** The next calls behave as scripted, in order; then back to answering from `tasks`. */
  script (...behaviours: Behaviour[]): void {
    this.#script.push(...behaviours)
  }

  /** Holds every answer until `release()`; calls are still logged as they arrive. */
  hold (): void {
    this.#gate = new Promise((resolve) => { this.#openGate = resolve })
  }

  release (): void {
    this.#openGate?.()
    this.#gate = undefined
  }

  /** Resolves once `n` calls in total have been received. */
  async waitForCalls (n: number): Promise<void> {
    while (this.calls.length < n) await new Promise<void>((resolve) => this.#waiters.push(resolve))
  }

  async close (): Promise<void> {
    this.release()
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  async #handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    if (req.method !== 'POST' || req.url?.endsWith('/mj/task/list-by-condition') !== true) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"description":"not found","type":"upstream_error","code":4}')
      return
    }
    let ids: string[] = []
    try {
      ids = JSON.parse(Buffer.concat(chunks).toString('utf8')).ids ?? []
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"description":"do_request_failed ","type":"upstream_error","code":4}')
      return
    }
    const authorization = req.headers.authorization
    this.calls.push({ ids, authorization })
    for (const wake of this.#waiters.splice(0)) wake()
    const behaviour = this.#script.shift() ?? { kind: 'tasks' }
    if (this.#gate !== undefined) await this.#gate
    switch (behaviour.kind) {
      case 'hang':
        return
      case 'reset':
        req.socket.destroy()
        return
      case 'status':
        res.writeHead(behaviour.status, { 'content-type': 'application/json', ...behaviour.headers })
          .end(behaviour.body ?? '{"description":"scripted failure","type":"upstream_error","code":4}')
        return
      case 'raw':
        res.writeHead(200, { 'content-type': behaviour.contentType ?? 'application/json' }).end(behaviour.body)
        return
      case 'json':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(behaviour.body))
        return
      case 'tasks': {
        const wanted = new Set(ids)
        const token = authorization?.replace(/^Bearer /, '')
        // Storage order, unknown and foreign ids left out, duplicates collapsed: as upstream.
        const found = [...this.tasks.values()].filter((t) => wanted.has(t.id) &&
          (!this.owners.has(t.id) || this.owners.get(t.id) === token))
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(found))
      }
    }
  }
}
