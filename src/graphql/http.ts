import { GraphQLError } from 'graphql'
import type { FastifyError, FastifyReply, FastifyRequest, onResponseHookHandler, RouteOptions } from 'fastify'
import { isGatewayError } from '../errors.js'

/**
 * GraphQL over HTTP conformance, in one place. mercurius serves /graphql;
 * this module corrects where it departs from the spec (graphql-http's audit,
 * run by test/graphql-http.test.ts):
 *  - `extensions: null` is a valid request field;
 *  - `Accept: application/graphql-response+json` is answered in that type;
 *  - a request error (parse, validation, variable coercion) has no `data`,
 *    and its status is 200 under application/json but 400 under
 *    application/graphql-response+json.
 */

export const GRAPHQL_RESPONSE_TYPE = 'application/graphql-response+json'

/** True when the client accepts the GraphQL response media type (the spec's preferred one). */
function wantsGraphQLResponse (request: FastifyRequest): boolean {
  const accept = request.headers.accept
  return accept !== undefined && accept.includes(GRAPHQL_RESPONSE_TYPE)
}

/**
 * An onRoute hook for mercurius's /graphql routes: allows null extensions,
 * negotiates the response type, and adds `onResponse` to GET (the WebSocket
 * route) only, so no other route pays for it.
 */
export function conformGraphQLRoute (path: string, onWebSocketRouteResponse: onResponseHookHandler) {
  return function (route: RouteOptions): void {
    if (route.url !== path) return
    if (route.method === 'GET') route.onResponse = [...[route.onResponse ?? []].flat(), onWebSocketRouteResponse]
    const extensions = (route.schema?.body as { properties?: { extensions?: { type?: unknown } } } | undefined)?.properties?.extensions
    if (extensions !== undefined) extensions.type = ['object', 'null']
    const handler = route.handler
    // Wrapping the handler costs nothing when the client does not ask for the GraphQL type.
    route.handler = function (this: unknown, request: FastifyRequest, reply: FastifyReply) {
      if (wantsGraphQLResponse(request)) reply.type(`${GRAPHQL_RESPONSE_TYPE}; charset=utf-8`)
      return handler.call(this as never, request, reply)
    }
  }
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
    errors = [new Error('Internal Server Error')]
    status = 500
  } else {
    errors = [error]
  }
  // A body or query string of the wrong shape is a malformed HTTP request, not a GraphQL one.
  if ((err as RequestFailure).validation !== undefined || request.validationError !== undefined) status = 400
  reply
    .code(status)
    .type(`${graphqlResponse ? GRAPHQL_RESPONSE_TYPE : 'application/json'}; charset=utf-8`)
    .send({ errors: errors.map(toJSON) })
}
