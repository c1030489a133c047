import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors, isCredentialAnswer, type GatewayError } from '../errors.js'
import { clientErrorOf, errorBody } from '../http/errors.js'
import { RouteMethods } from '../http/route-methods.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The methods each registered path answers, for 405 rather than 404. */
    routeMethods: RouteMethods
  }
}

export function sendError (reply: FastifyReply, err: Pick<GatewayError, 'statusCode' | 'code' | 'message' | 'retryAfter'>): FastifyReply {
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
  return reply.code(err.statusCode).type('application/json; charset=utf-8').send(errorBody(err))
}

/** fastify's `frameworkErrors`: a URL the router cannot read (bad percent-encoding, too long a parameter), coded like the rest. */
export function frameworkErrorHandler (err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(reply, clientErrorOf(err, request) ?? new errors.Internal())
}

/**
 * The error for a request that no route took: 405 when its path answers
 * other methods (with `Allow` set on the reply), else 404.
 */
export function unrouted (app: FastifyInstance, request: FastifyRequest, reply: FastifyReply): GatewayError {
  const path = request.url.split('?')[0]!
  const allow = app.routeMethods.allowed(request.url)
  // The method itself is allowed when a route passed the request on (a missing static file): that is a 404.
  if (allow.length === 0 || allow.includes(request.method)) return new errors.RouteNotFound(request.method, path)
  reply.header('allow', allow.join(', '))
  return new errors.MethodNotAllowed(`Method ${request.method} is not allowed on ${path}; allowed: ${allow.join(', ')}`)
}

/**
 * Turns every thrown error into the JSON error body, with a code from the
 * table: fastify's own errors are mapped (src/http/errors.ts).
 * Client errors keep their message; an unexpected error is logged with its
 * stack and answered with a generic 500, so internals never reach a client.
 */
export const errorHandler = fp(async function errorHandler (app: FastifyInstance) {
  app.setErrorHandler(function (err: FastifyError, request, reply) {
    const coded = clientErrorOf(err, request)
    if (coded === undefined) {
      request.log.error({ err }, 'unhandled error')
      return sendError(reply, new errors.Internal())
    }
    if (coded.statusCode >= 500) {
      request.log.warn({ code: coded.code, msg: coded.message }, 'request failed')
    } else if (isCredentialAnswer(coded)) {
      // Upstream refused or rate limits the client's own credential: the client's business, not a gateway failure.
      request.log.info({ code: coded.code, upstreamStatus: coded.upstreamStatus }, 'upstream refused the client\'s credential')
    }
    if (coded instanceof errors.UpstreamUnauthorized) reply.header('www-authenticate', 'Bearer realm="cometapi", error="invalid_token"')
    return sendError(reply, coded)
  })

  // Registered first, so it sees every route the other plugins add.
  const routeMethods = new RouteMethods(RouteMethods.configOf(app))
  app.decorate('routeMethods', routeMethods)
  app.addHook('onRoute', (route) => { routeMethods.add(route.method, route.url) })

  app.setNotFoundHandler(function (request, reply) {
    return sendError(reply, unrouted(app, request, reply))
  })
}, { name: 'error-handler' })
