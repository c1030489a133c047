import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { SHARED_SCOPE, scopeOf, type Scope } from '../core/scope.js'
import { bearerToken } from '../core/credentials.js'
import type { UpstreamAuthMode } from '../config.js'
import { errors } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Whose tasks this request may see; batches and cache entries are partitioned by it. */
    readonly scope: Scope
  }
}

const kScope = Symbol('scope')

/**
 * Decorates every request with its `scope`. In `key` mode that is the shared
 * scope; in `passthrough` mode it is derived from the client's own bearer
 * token, and a request without one is refused.
 */
export const tenancy = fp<{ mode: UpstreamAuthMode }>(async function tenancy (app: FastifyInstance, { mode }) {
  if (mode === 'key') {
    app.decorateRequest('scope', { getter: () => SHARED_SCOPE })
    return
  }
  app.decorateRequest(kScope, null)
  app.decorateRequest('scope', {
    getter (this: FastifyRequest): Scope {
      const request = this as FastifyRequest & { [kScope]: Scope | null }
      let scope = request[kScope]
      if (scope === null) {
        const credential = bearerToken(this.headers.authorization)
        if (credential === undefined) {
          throw new errors.Unauthenticated('UPSTREAM_AUTH=passthrough: send your CometAPI key as Authorization: Bearer <key>')
        }
        scope = scopeOf(credential)
        request[kScope] = scope
      }
      return scope
    }
  })
}, { name: 'tenancy' })
