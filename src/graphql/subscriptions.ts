import { GraphQLError } from 'graphql'
import type { FastifyRequest } from 'fastify'
import type { IResolvers, MercuriusOptions } from 'mercurius'
import type { GatewayConfig } from '../config.js'
import { errors } from '../errors.js'
import { checkIds } from '../core/ids.js'
import { type Watcher, type WatchEvent, type WatchRequest } from '../core/watcher.js'
import type { UpstreamTask } from '../upstream/types.js'

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
          return watchIterator(ctx.app.watcher, { ids, scope: request.scope, client: ctx.app.security.client(request) })
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
    onConnect: () => true
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
