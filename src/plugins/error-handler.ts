import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { errors, isGatewayError, type GatewayError } from '../errors.js'

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

  app.setNotFoundHandler(function (request, reply) {
    return sendError(reply, new errors.RouteNotFound(request.method, request.url.split('?')[0]))
  })
}, { name: 'error-handler' })
