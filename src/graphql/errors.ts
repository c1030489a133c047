import mercurius, { type MercuriusContext, type MercuriusOptions } from 'mercurius'
import { GraphQLError } from 'graphql'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
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
 * mercurius' formatter (which sets the status code and flattens validation
 * errors), after replacing unexpected errors by a generic one. Stack traces
 * never reach a client: GraphQLError's JSON has message, locations, path and
 * extensions only, and that is all mercurius sends.
 */
export function safeErrorFormatter (execution: Parameters<NonNullable<MercuriusOptions['errorFormatter']>>[0], ctx: MercuriusContext): ReturnType<NonNullable<MercuriusOptions['errorFormatter']>> {
  const safe = execution.errors.map((err) => {
    if (isClientSafe(err)) return err
    const log = ctx.reply?.log ?? ctx.app.log
    log.error({ err: err.originalError, path: err.path }, 'unexpected GraphQL error')
    const internal = new gatewayErrors.Internal()
    return new GraphQLError(internal.message, { nodes: err.nodes, path: err.path, extensions: { code: internal.code } })
  })
  return mercurius.defaultErrorFormatter({ ...execution, errors: safe }, ctx)
}

type RequestFailure = FastifyError & { errors?: unknown[], locations?: unknown }

function toJSON (err: unknown): Record<string, unknown> {
  const graphqlError = err instanceof GraphQLError
    ? err
    : new GraphQLError((err as Error).message, { extensions: (err as { extensions?: Record<string, unknown> }).extensions })
  return graphqlError.toJSON() as unknown as Record<string, unknown>
}

/**
 * mercurius's `errorHandler`: errors raised before execution. GraphQL
 * request errors follow the status rule above; an HTTP-level failure keeps
 * its status (413, 415, 401...); anything unexpected is a bare 500 with no
 * internals. No response here carries `data`.
 */
export function graphqlErrorHandler (err: Error, request: FastifyRequest, reply: FastifyReply): void {
  const error = err as RequestFailure
  const graphqlResponse = wantsGraphQLResponse(request)
  let status = typeof error.statusCode === 'number' ? error.statusCode : 500
  let errors: unknown[]
  if (error.code === 'MER_ERR_GQL_VALIDATION' || error.code === 'MER_ERR_METHOD_NOT_ALLOWED') {
    errors = Array.isArray(error.errors) && error.errors.length > 0 ? error.errors : [error]
    if (error.code === 'MER_ERR_GQL_VALIDATION') status = graphqlResponse ? 400 : 200
  } else if (status >= 500 && !isGatewayError(error)) {
    request.log.error({ err: error }, 'unhandled GraphQL error')
    errors = [new gatewayErrors.Internal()]
    status = 500
  } else {
    // fastify's own refusals (body too large, media type, broken JSON) carry the gateway's codes here too.
    errors = [fastifyErrorOf(error, request, GRAPHQL_MEDIA_TYPES) ?? error]
  }
  // A body or query string of the wrong shape is a malformed HTTP request, not a GraphQL one.
  if ((err as RequestFailure).validation !== undefined || request.validationError !== undefined) status = 400
  reply
    .code(status)
    .type(`${graphqlResponse ? GRAPHQL_RESPONSE_TYPE : 'application/json'}; charset=utf-8`)
    .send({ errors: errors.map(toJSON) })
}
