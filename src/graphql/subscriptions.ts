import { getOperationAST, getVariableValues, GraphQLError, OperationTypeNode, parse, specifiedRules, validate } from 'graphql'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { IResolvers, MercuriusOptions } from 'mercurius'
import type { GatewayConfig } from '../config.js'
import { errors } from '../errors.js'
import { checkIds } from '../core/ids.js'
import { type Watcher, type WatchEvent, type WatchRequest } from '../core/watcher.js'
import type { SecurityPolicy } from '../security/policy.js'
import type { UpstreamTask } from '../upstream/types.js'
import { checkDocument, extraValidationRules, idLimit } from './limits.js'
import { SubscriptionSocket, type Admission } from './websocket.js'

declare module 'mercurius' {
  interface MercuriusContext {
    /** On a WebSocket operation: its socket, which ends the operation's watch. */
    subscriptionSocket?: SubscriptionSocket
    /** On a WebSocket operation: its id in the protocol. */
    id?: string
  }
}

type Item = UpstreamTask | GraphQLError

/** An id's failure as a GraphQL error that names the id, whatever error instance many ids share. */
function idError (event: Extract<WatchEvent, { type: 'error' }>): GraphQLError {
  return new GraphQLError(event.error.message, {
    originalError: event.error,
    extensions: { code: event.error.code, id: event.id, ...(event.final ? {} : { retrying: true }) }
  })
}

/**
 * A watch as the async iterator graphql-js subscribes to. Ends when the
 * watch is done (every task final) or the gateway shuts down; `return()`
 * (client stop or socket close) closes the watch.
 */
export function watchIterator (watcher: Watcher, req: Omit<WatchRequest, 'onEvent'>): AsyncIterableIterator<Item> {
  const queue: Item[] = []
  let ended = false
  let wake: ((result: IteratorResult<Item>) => void) | undefined
  const settle = (): void => {
    if (wake === undefined) return
    const resolve = wake
    wake = undefined
    const value = queue.shift()
    resolve(value !== undefined ? { value, done: false } : { value: undefined, done: true })
  }
  const handle = watcher.watch({
    ...req,
    onEvent (event) {
      if (event.type === 'task') queue.push(event.task)
      else if (event.type === 'error') queue.push(idError(event))
      else ended = true
      settle()
    }
  })
  const stop = async (): Promise<IteratorResult<Item>> => {
    ended = true
    queue.length = 0
    handle.close()
    settle()
    return { value: undefined, done: true }
  }
  return {
    next () {
      const value = queue.shift()
      if (value !== undefined) return Promise.resolve({ value, done: false })
      if (ended) return Promise.resolve({ value: undefined, done: true })
      return new Promise((resolve) => { wake = resolve })
    },
    return: stop,
    throw: stop,
    [Symbol.asyncIterator] () { return this }
  }
}

/** `Subscription.taskUpdates`: each id's current state at once, then its changes; completes when all are final. */
export function subscriptionResolvers (): IResolvers {
  return {
    Subscription: {
      taskUpdates: {
        subscribe (_root: unknown, args: { ids: string[] }, ctx) {
          const ids = checkIds(args.ids, ctx.app.gateway.config.limits)
          if (ids.length === 0) throw new errors.BadRequest('ids must name at least one task')
          // The WebSocket upgrade request, with connection_init's payload merged into its headers.
          const request = ctx.reply.request
          const iterator = watchIterator(ctx.app.watcher, { ids, scope: request.scope, client: ctx.app.security.client(request) })
          if (ctx.subscriptionSocket !== undefined && ctx.id !== undefined) ctx.subscriptionSocket.attach(ctx.id, iterator)
          return iterator
        },
        // An Error item becomes this event's `errors` entry; the socket and other ids go on.
        resolve: (item: Item) => item
      }
    }
  }
}

/**
 * mercurius' WebSocket transport (graphql-ws's `graphql-transport-ws` and the
 * legacy `graphql-ws` protocol) on the GraphQL path.
 */
export function subscriptionOptions (config: GatewayConfig): MercuriusOptions['subscription'] {
  return {
    keepAlive: config.watch.heartbeatMs,
    // Hook point for client authentication: return false to refuse the
    // connection (connection_error "Forbidden"), or an object to merge into the
    // context. Tenancy needs nothing here: `request.scope` reads the
    // Authorization header, which may also come from connection_init's payload.
    onConnect: () => true,
    // Each operation's context carries its socket (src/graphql/websocket.ts), which owns its watch.
    context: (socket) => socket instanceof SubscriptionSocket ? { subscriptionSocket: socket } : {}
  }
}

/**
 * What a subscribe must pass before mercurius runs it, in the order an HTTP
 * request meets the same checks: the rate limit, parsing, depth and field
 * limits, validation (graphql-js's rules and the gateway's), variable
 * values, the id total. Only subscriptions run on the socket.
 */
export function subscriptionAdmission (app: FastifyInstance, limits: SecurityPolicy['graphql']): Admission {
  const rules = [...specifiedRules, ...extraValidationRules(limits)]
  const checkIdTotal = idLimit(limits)
  return async function admitSubscription (request, payload) {
    await app.security.countRequest(request)
    const { query, variables, operationName } = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>
    if (typeof query !== 'string') throw new errors.BadRequest('query must be a GraphQL document')
    if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) throw new errors.BadRequest('variables must be an object')
    if (operationName != null && typeof operationName !== 'string') throw new errors.BadRequest('operationName must be a string')
    const values = (variables ?? {}) as Record<string, unknown>
    const name = operationName as string | null | undefined
    const document = parse(query)
    checkDocument(document, limits)
    const invalid = validate(app.graphql.schema, document, rules)
    if (invalid.length > 0) throw new AggregateError(invalid, 'GraphQL validation failed')
    const operation = getOperationAST(document, name)
    if (operation == null) {
      throw new errors.BadRequest(name == null ? 'operationName is required: the document has several operations' : `No operation named ${JSON.stringify(name)}`)
    }
    if (operation.operation !== OperationTypeNode.SUBSCRIPTION) {
      throw new errors.BadRequest(`Only subscriptions run over the WebSocket; send a ${operation.operation} with POST /graphql`)
    }
    const coerced = getVariableValues(app.graphql.schema, operation.variableDefinitions ?? [], values, { maxErrors: 50 })
    if (coerced.errors !== undefined) throw new AggregateError(coerced.errors, 'GraphQL variables are not valid')
    checkIdTotal(document, values)
  }
}

/**
 * onResponse of GET /graphql: a WebSocket upgrade answered with an HTTP error
 * (a hook refused it, e.g. 401) leaves its socket open, since
 * @fastify/websocket only marks upgrades in an onRequest hook that never ran,
 * and app.close() would then wait for it forever. Accepted upgrades are
 * hijacked and never get here.
 */
export function closeRefusedUpgrade (request: FastifyRequest, _reply: unknown, done: () => void): void {
  if (request.headers.upgrade?.toLowerCase() === 'websocket') request.raw.socket?.destroy()
  done()
}
