import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Scope } from './batcher.js'
import type { UpstreamAuthMode } from './config.js'
import { errors } from './errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Whose tasks this request may see; batches and cache entries are partitioned by it. */
    readonly scope: Scope
  }
}

/** With one gateway-wide key every client shares one partition. */
export const SHARED_SCOPE: Scope = Object.freeze({ partition: 'shared', credential: undefined })

const kScope = Symbol('scope')

/** A bearer token from an Authorization header, or undefined. */
export function bearerToken (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1]
}

/**
 * The partition of a pass-through credential: a SHA-256 digest, so the
 * raw key is never used as a map key, cached, logged or put in a metric.
 */
export function partitionOf (credential: string): string {
  return 'cred:' + createHash('sha256').update(credential).digest('base64url')
}

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
        scope = { partition: partitionOf(credential), credential }
        request[kScope] = scope
      }
      return scope
    }
  })
}, { name: 'tenancy' })
