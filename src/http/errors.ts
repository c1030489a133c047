import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { errorCodes, type FastifyBaseLogger, type FastifyError, type FastifyRequest } from 'fastify'
import { errors, isGatewayError, type GatewayError } from '../errors.js'

/** The JSON error body of every REST route: `{statusCode, code, error, message}`. */
export interface ErrorBody {
  statusCode: number
  code: string
  error: string
  message: string
}

export function errorBody (err: Pick<GatewayError, 'statusCode' | 'code' | 'message'>): ErrorBody {
  return { statusCode: err.statusCode, code: err.code, error: STATUS_CODES[err.statusCode] ?? 'Error', message: err.message }
}

/** What the JSON routes parse; /graphql adds application/graphql. */
export const JSON_MEDIA_TYPES: readonly string[] = ['application/json']

/**
 * A 4xx raised by fastify itself as the gateway's coded error, so no client
 * ever sees an `FST_ERR_*` code: bodies too large, media types nobody parses,
 * empty or broken JSON, bad URLs. Classified by fastify's error classes.
 * Any other 4xx (from fastify or a plugin) keeps its status and message
 * under GW_ERR_REQUEST. Undefined for a 5xx that is not the gateway's own:
 * a bug, whose details stay in the log.
 */
export function clientErrorOf (err: FastifyError, request: FastifyRequest, accepted: readonly string[] = JSON_MEDIA_TYPES): GatewayError | undefined {
  if (isGatewayError(err)) return err
  const mapped = fastifyErrorOf(err, request, accepted)
  if (mapped !== undefined) return mapped
  const statusCode = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
  if (statusCode >= 500) return undefined
  const coded: GatewayError = new errors.Request(err.message)
  coded.statusCode = statusCode
  return coded
}

/** The gateway's error for one of fastify's request errors (body, media type, JSON, URL, schema), else undefined. */
export function fastifyErrorOf (err: FastifyError, request: FastifyRequest, accepted: readonly string[]): GatewayError | undefined {
  if (err instanceof errorCodes.FST_ERR_CTP_BODY_TOO_LARGE) {
    return new errors.BodyTooLarge(`Request body is larger than this route's limit of ${request.routeOptions.bodyLimit} bytes`)
  }
  if (err instanceof errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE) {
    const given = request.headers['content-type']
    return new errors.UnsupportedMediaType(`Unsupported Media Type: ${given === undefined || given === '' ? 'no Content-Type' : JSON.stringify(given)}; send ${accepted.join(' or ')}`)
  }
  if (err.validation !== undefined || err instanceof errorCodes.FST_ERR_CTP_INVALID_JSON_BODY ||
    err instanceof errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY || err instanceof errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH ||
    err instanceof errorCodes.FST_ERR_BAD_URL) {
    return new errors.BadRequest(err.message)
  }
  return undefined
}

type ClientError = Error & { code?: string }

/**
 * fastify's `clientErrorHandler`: what Node's HTTP parser and deadlines
 * refuse before any route runs (a request too slow, headers too large, a
 * malformed request line) answered with the gateway's coded JSON body, then
 * the connection closed. Nothing is written into a response already under way.
 */
export function connectionErrorHandler (requestTimeoutMs: number) {
  return function (this: { log: FastifyBaseLogger }, err: ClientError, socket: Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    let coded: GatewayError
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') coded = new errors.RequestTimeout(requestTimeoutMs)
    else if (err.code === 'HPE_HEADER_OVERFLOW') coded = new errors.HeadersTooLarge()
    else coded = new errors.BadRequest(`Malformed HTTP request: ${err.message}`)
    this.log.debug({ code: err.code, answer: coded.code }, 'refused a connection\'s request')
    const response = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage
    if (!socket.writable || response?.headersSent === true) {
      socket.destroy()
      return
    }
    const body = JSON.stringify(errorBody(coded))
    socket.end(`HTTP/1.1 ${coded.statusCode} ${STATUS_CODES[coded.statusCode]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      () => socket.destroy())
  }
}
