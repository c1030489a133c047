import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors, isGatewayError, type GatewayError } from '../errors.js'
import { RouteMethods } from '../http/route-methods.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The methods each registered path answers, for 405 rather than 404. */
    routeMethods: RouteMethods
  }
}

/** The JSON error body of every REST route: `{statusCode, code, error, message}`. */
export interface ErrorBody {
  statusCode: number
  code: string
  error: string
  message: string
}

export function sendError (reply: FastifyReply, err: Pick<GatewayError, 'statusCode' | 'code' | 'message' | 'retryAfter'>): FastifyReply {
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
  const body: ErrorBody = {
    statusCode: err.statusCode,
    code: err.code,
    error: STATUS_CODES[err.statusCode] ?? 'Error',
    message: err.message
  }
  return reply.code(err.statusCode).type('application/json; charset=utf-8').send(body)
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
 * Turns every thrown error into the JSON error body. Client errors keep their
 * message; an unexpected error is logged with its stack and answered with a
 * generic 500, so internals never reach a client.
 */
export const errorHandler = fp(async function errorHandler (app: FastifyInstance) {
  app.setErrorHandler(function (err: FastifyError & { retryAfter?: number }, request, reply) {
    if (err.validation !== undefined) {
      return sendError(reply, new errors.BadRequest(err.message))
    }
    const statusCode = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (statusCode >= 500 && !isGatewayError(err)) {
      request.log.error({ err }, 'unhandled error')
      return sendError(reply, new errors.Internal())
    }
    if (statusCode >= 500) request.log.warn({ code: err.code, msg: err.message }, 'request failed')
    if (typeof err.code === 'string') return sendError(reply, { statusCode, code: err.code, message: err.message, retryAfter: err.retryAfter })
    const coded: GatewayError = new errors.Request(err.message)
    coded.statusCode = statusCode
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
