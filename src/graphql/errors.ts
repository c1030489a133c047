import mercurius, { type MercuriusContext, type MercuriusOptions } from 'mercurius'
import { GraphQLError } from 'graphql'
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { errors as gatewayErrors, isGatewayError } from '../errors.js'
import { GRAPHQL_RESPONSE_TYPE, wantsGraphQLResponse } from './http.js'
import { fastifyErrorOf, JSON_MEDIA_TYPES } from '../http/errors.js'

/** What POST /graphql parses. */
const GRAPHQL_MEDIA_TYPES: readonly string[] = [...JSON_MEDIA_TYPES, 'application/graphql']

/*
 * GraphQL error shaping, in one home: which errors a client may read, the
 * execution error formatter, and the handler of errors raised before execution.
 */

/**
 * Errors whose text was written for clients: GraphQL syntax and validation
 * errors, coded gateway errors, and 4xx errors from fastify or mercurius.
 * Anything else (a TypeError in a resolver, say) is a bug whose message may
 * describe internals, so the client gets a generic message instead.
 */
function isClientSafe (err: GraphQLError): boolean {
  const original = err.originalError as (Error & { statusCode?: unknown, errors?: unknown }) | undefined | null
  if (original == null || original instanceof GraphQLError || Array.isArray(original.errors)) return true
  if (isGatewayError(original)) return true
  return typeof original.statusCode === 'number' && original.statusCode >= 400 && original.statusCode < 500
}

/**
 * mercurius' formatter (which flattens validation errors), after replacing
 * unexpected errors by a generic one. Stack traces never reach a client:
 * GraphQLError's JSON has message, locations, path and extensions only, and
 * that is all mercurius sends.
 *
 * Status: a result that carries `data` (null included) was executed, and is
 * 200 on either media type; mercurius would send a field error's own status
 * (a 400 or 502 with `data: null`), which GraphQL-over-HTTP clients read as
 * "nothing ran". A result that never ran (one operation of a batch refused
 * before execution) gets no `data` entry.
 */
export function safeErrorFormatter (execution: Parameters<NonNullable<MercuriusOptions['errorFormatter']>>[0], ctx: MercuriusContext): ReturnType<NonNullable<MercuriusOptions['errorFormatter']>> {
  const safe = execution.errors.map((err) => {
    // graphql-js's own errors (variables, arguments) carry no code; every error a client sees does.
    if (isClientSafe(err)) return (err.originalError == null ? coded(err) : err) as GraphQLError
    const log = ctx.reply?.log ?? ctx.app.log
    log.error({ err: err.originalError, path: err.path }, 'unexpected GraphQL error')
    const internal = new gatewayErrors.Internal()
    return new GraphQLError(internal.message, { nodes: err.nodes, path: err.path, extensions: { code: internal.code } })
  })
  const formatted = mercurius.defaultErrorFormatter({ ...execution, errors: safe }, ctx)
  // graphql-jit leaves `data` out when it is null, so a field error's path tells too: errors raised before execution have none.
  const executed = 'data' in execution || execution.errors.some((err) => err.path !== undefined)
  if (!executed) {
    // graphql-jit reports bad variable values here rather than before execution: the same request-error rule applies.
    const requestErrors = safe.every((err) => err.originalError instanceof gatewayErrors.GraphQLValidation)
    const status = requestErrors ? (wantsGraphQLResponse(ctx.reply.request) ? 400 : 200) : formatted.statusCode
    return { statusCode: status, response: { errors: formatted.response.errors } }
  }
  return { statusCode: 200, response: formatted.response }
}

type RequestFailure = FastifyError & { errors?: unknown[], locations?: unknown }

/** An error as an entry of a response's `errors`. */
function toJSON (err: unknown): Record<string, unknown> {
  const graphqlError = err instanceof GraphQLError
    ? err
    : new GraphQLError((err as Error).message, { extensions: (err as { extensions?: Record<string, unknown> }).extensions })
  return graphqlError.toJSON() as unknown as Record<string, unknown>
}

/**
 * A request error of graphql-js (syntax, validation, variable values) with
 * the code every error carries, GRAPHQL_VALIDATION_FAILED; an error that has
 * a code keeps it.
 */
function coded (err: unknown): unknown {
  // graphql-jit's errors may come without `extensions`.
  if (!(err instanceof GraphQLError) || err.extensions?.code !== undefined) return err
  const validation = new gatewayErrors.GraphQLValidation(err.message)
  return new GraphQLError(err.message, {
    nodes: err.nodes,
    source: err.source,
    positions: err.positions,
    path: err.path,
    originalError: validation,
    extensions: { ...(err.extensions ?? {}), code: validation.code }
  })
}

/**
 * The `errors` of a refused operation, as HTTP answers them (see
 * graphqlErrorHandler below): request errors coded, coded gateway errors and
 * 4xx as they are, anything else a generic internal error, logged.
 */
export function refusalErrors (err: unknown, log: FastifyBaseLogger): Array<Record<string, unknown>> {
  const many = (err as { errors?: unknown }).errors
  if (err instanceof GraphQLError || (Array.isArray(many) && many.length > 0)) {
    return (err instanceof GraphQLError ? [err] : many as unknown[]).map((one) => toJSON(coded(one)))
  }
  const status = (err as { statusCode?: unknown }).statusCode
  if (isGatewayError(err) || (typeof status === 'number' && status >= 400 && status < 500)) return [toJSON(err)]
  log.error({ err }, 'unexpected error admitting a GraphQL operation')
  return [toJSON(new gatewayErrors.Internal())]
}

/**
 * A result for an error that mercurius returns instead of throwing (an
 * operation of a batch without a query): the error in `errors`, no `data`.
 * Only a 4xx speaks for itself; anything else is a bug, logged and generic.
 */
export function errorResult (err: Error, request: FastifyRequest): { errors: Array<Record<string, unknown>> } {
  const status = (err as RequestFailure).statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) return { errors: [toJSON(err)] }
  request.log.error({ err }, 'unhandled GraphQL error')
  return { errors: [toJSON(new gatewayErrors.Internal())] }
}

/**
 * A GraphQL request error: the request was well-formed HTTP but is refused
 * before execution, by graphql-js (parse, validation, variables) or by one of
 * the gateway's own 400 checks (depth, fields, id total, not a document).
 * HTTP-level refusals keep their status: 401, 405, 413, 415, 429, 503, and
 * 400 for a body of the wrong shape.
 */
function isRequestError (error: RequestFailure): boolean {
  if (error.code === 'MER_ERR_GQL_VALIDATION') return true
  // The wrong transport for the operation, not a wrong request: 400 whatever the media type.
  if (error instanceof gatewayErrors.SubscriptionTransport) return false
  // isGatewayError goes by class: fastify's and mercurius' own 400s are not request errors.
  return error.statusCode === 400 && isGatewayError(error)
}

/**
 * mercurius's `errorHandler`: errors raised before execution. A request error
 * is 200 under application/json (every well-formed request is) and 400 under
 * application/graphql-response+json, as GraphQL over HTTP says; an
 * HTTP-level failure keeps its status (413, 415, 401...); anything unexpected
 * is a bare 500 with no internals. No response here carries `data`.
 *
 * A batch refused as a whole by a request error (too many ids or fields
 * across its operations) gets that error once per operation, so a batching
 * client (Apollo's BatchHttpLink) hands each operation its error instead of
 * failing on a result count that does not match.
 */
export function graphqlErrorHandler (err: Error, request: FastifyRequest, reply: FastifyReply): void {
  const error = err as RequestFailure
  const graphqlResponse = wantsGraphQLResponse(request)
  let status = typeof error.statusCode === 'number' ? error.statusCode : 500
  let errors: unknown[]
  // A body or query string of the wrong shape is a malformed HTTP request, not a GraphQL one.
  const malformed = error.validation !== undefined || request.validationError !== undefined
  const requestError = !malformed && isRequestError(error)
  if (error.code === 'MER_ERR_GQL_VALIDATION') {
    errors = (Array.isArray(error.errors) && error.errors.length > 0 ? error.errors : [error]).map(coded)
  } else if (error.code === 'MER_ERR_METHOD_NOT_ALLOWED') {
    // mercurius refuses a mutation (or subscription) by GET; coded and with Allow, as a PUT /graphql is.
    reply.header('allow', 'POST')
    errors = [new gatewayErrors.MethodNotAllowed('Only queries can be sent by GET; send this operation by POST')]
  } else if (status >= 500 && !isGatewayError(error)) {
    request.log.error({ err: error }, 'unhandled GraphQL error')
    errors = [new gatewayErrors.Internal()]
    status = 500
  } else {
    // fastify's own refusals (body too large, media type, broken JSON) carry the gateway's codes here too.
    errors = [fastifyErrorOf(error, request, GRAPHQL_MEDIA_TYPES) ?? error]
  }
  if (requestError) status = graphqlResponse ? 400 : 200
  if (malformed) status = 400
  const body = { errors: errors.map(toJSON) }
  const batch = request.method === 'POST' && Array.isArray(request.body) ? request.body.length : 0
  reply
    .code(status)
    .type(`${graphqlResponse ? GRAPHQL_RESPONSE_TYPE : 'application/json'}; charset=utf-8`)
    .send(requestError && batch > 0 ? Array.from({ length: batch }, () => body) : body)
}
