import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors, isCredentialAnswer, type GatewayError } from '../errors.js'
import { clientErrorOf, errorBody } from '../http/errors.js'

export function sendError (reply: FastifyReply, err: Pick<GatewayError, 'statusCode' | 'code' | 'message' | 'retryAfter'>): FastifyReply {
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
  return reply.code(err.statusCode).type('application/json; charset=utf-8').send(errorBody(err))
}

/** fastify's `frameworkErrors`: a URL the router cannot read (bad percent-encoding, too long a parameter), coded like the rest. */
export function frameworkErrorHandler (err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(reply, clientErrorOf(err, request) ?? new errors.Internal())
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

  app.setNotFoundHandler(function (request, reply) {
    return sendError(reply, new errors.RouteNotFound(request.method, request.url.split('?')[0]))
  })
}, { name: 'error-handler' })
