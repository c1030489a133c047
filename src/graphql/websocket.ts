import { EventEmitter } from 'node:events'
import type { RawData, WebSocket } from 'ws'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'

/*
 * What mercurius's WebSocket transport (lib/subscription-connection.js) lacks,
 * added in front of it. mercurius runs none of the HTTP checks on a subscribe
 * (no validate(), no preValidation/preExecution hooks), lets a subscribe
 * reuse the id of a running operation (and so loses the first one's
 * iterator: its watch outlives the socket), and has no option for either.
 * Its subscription hooks cannot fill the gap: preSubscriptionExecution is
 * not given the variables (so ids in them cannot be counted), its errors
 * reach the client one at a time, and none of them sees the socket.
 *
 * So mercurius gets a SubscriptionSocket in place of the ws socket: the few
 * members it uses (protocol, readyState, send, close, 'message', 'close' and
 * 'error' events), with every incoming message passing through here first.
 *  - A subscribe whose id is in use closes the socket with 4409, as
 *    graphql-transport-ws says ("Subscriber for <id> already exists").
 *  - Any other subscribe is admitted (rate limit, parse, limits, validation,
 *    ids: the caller's `admit`) before mercurius sees it; a refusal is an
 *    `error` message for that id, with the errors HTTP would answer.
 *  - The watch of each operation is attached to the socket, which returns it
 *    when the client stops the operation or the socket closes, whatever
 *    mercurius did with its own iterator.
 */

/** Message types a client sends to start and stop an operation, per subprotocol mercurius speaks. */
const CLIENT_MESSAGES: Readonly<Record<string, { readonly subscribe: string, readonly stop: string }>> = Object.freeze({
  'graphql-transport-ws': { subscribe: 'subscribe', stop: 'complete' },
  // The legacy subscriptions-transport-ws protocol.
  'graphql-ws': { subscribe: 'start', stop: 'stop' }
})

/** Resolves when a subscribe may run; rejects with what refuses it. */
export type Admission = (request: FastifyRequest, payload: unknown) => Promise<void>

/** The `errors` of an `error` message refusing an operation. */
export type Refusal = (err: unknown, log: FastifyBaseLogger) => unknown[]

/** An operation's watch, as graphql-js subscribes to it. */
type Watch = AsyncIterator<unknown>

interface ClientMessage { type?: unknown, id?: unknown, payload?: unknown }

/** A client message, or undefined for one that is not a JSON object (mercurius answers those). */
function parseMessage (data: RawData): ClientMessage | undefined {
  const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
  try {
    const message: unknown = JSON.parse(bytes.toString())
    return typeof message === 'object' && message !== null ? message as ClientMessage : undefined
  } catch {
    return undefined
  }
}

export class SubscriptionSocket extends EventEmitter {
  readonly #ws: WebSocket
  readonly #request: FastifyRequest
  readonly #admit: Admission
  readonly #refuse: Refusal
  readonly #messages: { readonly subscribe: string, readonly stop: string } | undefined
  /** Operations admitted and not yet ended, by id, with their watch once it started. */
  readonly #operations = new Map<string, Watch | undefined>()
  /** Messages are handled one after another, as they came, while admissions wait on the rate limit's store. */
  #inbox: Promise<void> = Promise.resolve()

  constructor (ws: WebSocket, request: FastifyRequest, admit: Admission, refuse: Refusal) {
    super()
    this.#ws = ws
    this.#request = request
    this.#admit = admit
    this.#refuse = refuse
    this.#messages = CLIENT_MESSAGES[ws.protocol]
    ws.on('message', (data, isBinary) => {
      this.#inbox = this.#inbox
        .then(async () => await this.#receive(data, isBinary))
        .catch((err: unknown) => {
          request.log.error({ err }, 'GraphQL WebSocket message failed')
          this.#ws.close(1011)
        })
    })
    ws.on('close', (code, reason) => {
      for (const watch of this.#operations.values()) void watch?.return?.()
      this.#operations.clear()
      this.emit('close', code, reason)
    })
    // mercurius listens for errors once it took the socket; ws reports them to @fastify/websocket anyway.
    ws.on('error', (err) => { if (this.listenerCount('error') > 0) this.emit('error', err) })
  }

  get protocol (): string { return this.#ws.protocol }
  get readyState (): number { return this.#ws.readyState }

  send (data: string, callback?: (err?: Error) => void): void {
    this.#sent(data)
    this.#ws.send(data, callback)
  }

  close (code?: number, reason?: string): void {
    this.#ws.close(code, reason)
  }

  /**
   * Ties the watch an operation started to this socket: returned when the
   * client stops the operation or the socket closes. An operation that is
   * already over (stopped while it started, or its socket gone) is returned at once.
   */
  attach (id: string, watch: Watch): void {
    if (this.#operations.has(id) && this.#operations.get(id) === undefined && this.#ws.readyState === this.#ws.OPEN) {
      this.#operations.set(id, watch)
    } else {
      void watch.return?.()
    }
  }

  async #receive (data: RawData, isBinary: boolean): Promise<void> {
    // An unknown subprotocol is mercurius's to refuse (it closes with 1002).
    const types = this.#messages
    const message = types === undefined ? undefined : parseMessage(data)
    if (types !== undefined && message !== undefined) {
      if (message.type === types.subscribe && !await this.#admitted(message)) return
      if (message.type === types.stop && typeof message.id === 'string') this.#end(message.id)
    }
    this.emit('message', data, isBinary)
  }

  /** Whether a subscribe goes on to mercurius; if not, the socket is closed or the client has its `error`. */
  async #admitted ({ id, payload }: ClientMessage): Promise<boolean> {
    if (typeof id !== 'string' || id === '') {
      this.#closeWith(4400, 'Invalid message received: a subscribe needs an id')
      return false
    }
    if (this.#operations.has(id)) {
      this.#closeWith(4409, `Subscriber for ${id} already exists`, 'Subscriber already exists')
      return false
    }
    this.#operations.set(id, undefined)
    try {
      await this.#admit(this.#request, payload)
    } catch (err) {
      if (!this.#operations.delete(id)) return false
      this.#ws.send(JSON.stringify({ type: 'error', id, payload: this.#refuse(err, this.#request.log) }))
      return false
    }
    // Still there unless the socket closed or the client stopped it while it was admitted.
    return this.#operations.has(id)
  }

  /** A close frame's reason has at most 123 bytes; a longer one (a long id) gives way to `short`. */
  #closeWith (code: number, reason: string, short = reason): void {
    this.#ws.close(code, Buffer.byteLength(reason) <= 123 ? reason : short)
  }

  /**
   * An operation ends when mercurius sends its `complete` or `error`. It
   * writes every message as JSON.stringify({ type, id, payload }), so only
   * those two are read back, and `next` (the bulk of the traffic) is not
   * parsed. Its watch, if any, is returned here too: it has ended or is
   * ending, and returning it twice is harmless.
   */
  #sent (data: string): void {
    if (!data.startsWith('{"type":"complete"') && !data.startsWith('{"type":"error"')) return
    const { id } = JSON.parse(data) as { id?: unknown }
    if (typeof id !== 'string') return
    this.#end(id)
  }

  /** The operation is over: its id is free, and its watch (if it started one) is returned. */
  #end (id: string): void {
    const watch = this.#operations.get(id)
    this.#operations.delete(id)
    void watch?.return?.()
  }
}

type WebSocketHandler = (this: FastifyInstance, socket: WebSocket, request: FastifyRequest) => unknown

/**
 * An onRoute hook giving the WebSocket handler of `path` (mercurius's GET
 * /graphql) a SubscriptionSocket in place of each socket. Added before
 * mercurius registers, so it runs before @fastify/websocket's own onRoute
 * hook reads `wsHandler`.
 */
export function guardSubscriptionSockets (path: string, admit: Admission, refuse: Refusal) {
  return function (route: RouteOptions & { wsHandler?: WebSocketHandler }): void {
    if (route.url !== path || typeof route.wsHandler !== 'function') return
    const handler = route.wsHandler
    route.wsHandler = function (socket, request) {
      return handler.call(this, new SubscriptionSocket(socket, request, admit, refuse) as unknown as WebSocket, request)
    }
  }
}
