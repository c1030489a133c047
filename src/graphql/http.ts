import { getOperationAST, OperationTypeNode, type DocumentNode } from 'graphql'
import type { MercuriusContext } from 'mercurius'
import type { FastifyReply, FastifyRequest, FastifySchema, onResponseHookHandler, RouteOptions } from 'fastify'
import { errors } from '../errors.js'

/**
 * GraphQL over HTTP conformance, in one place. mercurius serves /graphql;
 * this module corrects where it departs from the spec (graphql-http's audit,
 * run by test/graphql/http.test.ts):
 *  - `extensions: null` is a valid request field;
 *  - `Accept: application/graphql-response+json` is answered in that type;
 *  - a request error (parse, validation, variable coercion, the gateway's
 *    limits) has no `data`, and its status is 200 under application/json
 *    but 400 under application/graphql-response+json (src/graphql/errors.ts);
 *  - a result with `data` is 2xx, whatever its errors.
 *  - list indices in an error's `path` are numbers (`["tasks", 0]`);
 *  - a subscription is refused: it runs over WebSocket or SSE.
 */

interface BodySchema {
  properties?: { extensions?: { type?: unknown } }
  items?: BodySchema
  anyOf?: BodySchema[]
}

/** The request-object schemas in a POST body schema: the object itself, or each side of mercurius' object-or-array `anyOf`. */
function requestSchemas (body: BodySchema | undefined): BodySchema[] {
  if (body === undefined) return []
  return [body, ...(body.anyOf ?? []).flatMap((variant) => [variant, ...(variant.items !== undefined ? [variant.items] : [])])]
}

export const GRAPHQL_RESPONSE_TYPE = 'application/graphql-response+json'

/** True when the client accepts the GraphQL response media type (the spec's preferred one). */
export function wantsGraphQLResponse (request: FastifyRequest): boolean {
  const accept = request.headers.accept
  return accept !== undefined && accept.includes(GRAPHQL_RESPONSE_TYPE)
}

interface ResponseSchema { properties?: { errors?: { items?: { properties?: { path?: unknown } } } } }

/**
 * mercurius's response schemas declare `path` as a list of strings, so its
 * serializer writes list index 0 as "0". A copy with `path` items that are
 * strings (field names) or integers (list indices); mercurius's own schema
 * objects, shared by its routes, stay untouched.
 */
function withNumericPaths (response: Record<string, ResponseSchema>): Record<string, ResponseSchema> {
  const fixed: Record<string, ResponseSchema> = {}
  for (const [status, schema] of Object.entries(response)) {
    const copy = structuredClone(schema)
    const item = copy.properties?.errors?.items?.properties
    if (item?.path !== undefined) item.path = { type: 'array', items: { type: ['string', 'integer'] } }
    fixed[status] = copy
  }
  return fixed
}

/**
 * An onRoute hook for mercurius's /graphql routes: allows null extensions,
 * serializes paths as graphql-js has them, negotiates the response type, and
 * adds `onResponse` to GET (the WebSocket route) only, so no other route pays for it.
 */
export function conformGraphQLRoute (path: string, onWebSocketRouteResponse: onResponseHookHandler) {
  return function (route: RouteOptions): void {
    if (route.url !== path) return
    if (route.method === 'GET') route.onResponse = [...[route.onResponse ?? []].flat(), onWebSocketRouteResponse]
    for (const schema of requestSchemas(route.schema?.body as BodySchema | undefined)) {
      const extensions = schema.properties?.extensions
      if (extensions !== undefined) extensions.type = ['object', 'null']
    }
    const response = route.schema?.response as Record<string, ResponseSchema> | undefined
    if (response !== undefined) route.schema = { ...route.schema, response: withNumericPaths(response) } as FastifySchema
    const handler = route.handler
    // Wrapping the handler costs nothing when the client does not ask for the GraphQL type.
    route.handler = function (this: unknown, request: FastifyRequest, reply: FastifyReply) {
      if (wantsGraphQLResponse(request)) reply.type(`${GRAPHQL_RESPONSE_TYPE}; charset=utf-8`)
      return handler.call(this as never, request, reply)
    }
  }
}

/**
 * The `operationName` of the request an HTTP operation came from: the query
 * string of a GET, the body of a POST (an entry of it for a batch; an
 * application/graphql body has none).
 */
function operationNameOf (context: MercuriusContext): string | undefined {
  const request = context.reply.request
  let params: unknown = request.method === 'GET' ? request.query : request.body
  if (Array.isArray(params)) params = params[context.operationId ?? 0]
  const name = (params as { operationName?: unknown } | null | undefined)?.operationName
  return typeof name === 'string' ? name : undefined
}

/**
 * A mercurius preExecution hook: graphql-js would execute a subscription
 * over HTTP as a query (its root value is no task, so every request fails as
 * an internal error). Refuse it as a client error that says where
 * subscriptions run. (GET answers 405 before this: it only runs queries.)
 */
export async function refuseSubscriptionOverHttp (_schema: unknown, document: DocumentNode, context: MercuriusContext): Promise<void> {
  const operation = getOperationAST(document, operationNameOf(context))
  if (operation?.operation === OperationTypeNode.SUBSCRIPTION) throw new errors.SubscriptionTransport(context.reply.request.method)
}
