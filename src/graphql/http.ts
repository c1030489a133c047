import type { FastifyReply, FastifyRequest, onResponseHookHandler, RouteOptions } from 'fastify'

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

/**
 * An onRoute hook for mercurius's /graphql routes: allows null extensions,
 * negotiates the response type, and adds `onResponse` to GET (the WebSocket
 * route) only, so no other route pays for it.
 */
export function conformGraphQLRoute (path: string, onWebSocketRouteResponse: onResponseHookHandler) {
  return function (route: RouteOptions): void {
    if (route.url !== path) return
    if (route.method === 'GET') route.onResponse = [...[route.onResponse ?? []].flat(), onWebSocketRouteResponse]
    for (const schema of requestSchemas(route.schema?.body as BodySchema | undefined)) {
      const extensions = schema.properties?.extensions
      if (extensions !== undefined) extensions.type = ['object', 'null']
    }
    const handler = route.handler
    // Wrapping the handler costs nothing when the client does not ask for the GraphQL type.
    route.handler = function (this: unknown, request: FastifyRequest, reply: FastifyReply) {
      if (wantsGraphQLResponse(request)) reply.type(`${GRAPHQL_RESPONSE_TYPE}; charset=utf-8`)
      return handler.call(this as never, request, reply)
    }
  }
}
