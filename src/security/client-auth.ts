import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../errors.js'
import { bearerToken, matchesDigest, sha256 } from '../core/credentials.js'
import type { SecurityPolicy } from './policy.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Open to every client: no client key, no pass-through credential, no rate limit (health probes). */
    public?: boolean
  }
}

/**
 * Routes that read tasks with the caller's credential in pass-through mode.
 * Other routes (pages, docs, metrics) carry no CometAPI credential.
 */
export function isDataRoute (url: string | undefined): boolean {
  return url !== undefined && (url === '/graphql' || url.startsWith('/v1/') || url.startsWith('/mj/'))
}

export function isPublicRoute (request: FastifyRequest): boolean {
  return request.routeOptions.config.public === true
}

const kClient = Symbol('client')

/**
 * Who the client is, by its key: `key:<sha256>` when it presented one of the
 * accepted keys, else undefined. Memoized per request, since the rate limit
 * reads it before the auth check does.
 */
export function clientIdentifier (policy: SecurityPolicy): (request: FastifyRequest) => string | undefined {
  const digests = policy.clientKeyDigests
  return function identify (request) {
    if (digests.length === 0) return undefined
    const memo = request as FastifyRequest & { [kClient]?: string | null }
    const known = memo[kClient]
    if (known !== undefined) return known ?? undefined
    const given = presentedKey(request, policy.passthrough)
    let id: string | null = null
    if (given !== undefined) {
      // Digests are all 32 bytes, so neither the key's length nor its content changes the time taken;
      // every key is compared, so neither does which one matched.
      const digest = sha256(given)
      if (matchesDigest(digest, digests)) id = 'key:' + digest.toString('base64url')
    }
    memo[kClient] = id
    return id ?? undefined
  }
}

/**
 * The client key a request presents: `x-api-key`, or else (unless
 * `Authorization` carries the CometAPI key in pass-through mode) a bearer token.
 */
function presentedKey (request: FastifyRequest, passthrough: boolean): string | undefined {
  const header = request.headers['x-api-key']
  if (typeof header === 'string') return header.trim()
  if (header !== undefined) return undefined
  return passthrough ? undefined : bearerToken(request.headers.authorization)
}

/**
 * The onRequest check: a client key when GATEWAY_API_KEYS is set, and in
 * pass-through mode a bearer credential on every data route, so a missing one
 * is the same 401 on every surface before any body is read. Errors are coded
 * UNAUTHENTICATED: REST routes answer them as the JSON error body, GraphQL as
 * `errors[].extensions.code`.
 */
export function clientAuthHook (policy: SecurityPolicy, identify: (request: FastifyRequest) => string | undefined) {
  const keysOn = policy.clientKeyDigests.length > 0
  const where = policy.passthrough ? 'x-api-key: <key>' : 'Authorization: Bearer <key> or x-api-key: <key>'
  return async function clientAuth (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (isPublicRoute(request)) return
    if (keysOn && identify(request) === undefined) {
      reply.header('www-authenticate', 'Bearer realm="gateway"')
      const given = request.headers['x-api-key'] !== undefined || (!policy.passthrough && request.headers.authorization !== undefined)
      throw new errors.Unauthenticated(given ? 'Invalid client key' : `Missing client key: send ${where}`)
    }
    if (policy.passthrough && isDataRoute(request.routeOptions.url)) {
      try {
        // The scope getter refuses a request without a bearer credential (src/plugins/tenancy.ts).
        void request.scope
      } catch (err) {
        reply.header('www-authenticate', 'Bearer realm="cometapi"')
        throw err
      }
    }
  }
}
