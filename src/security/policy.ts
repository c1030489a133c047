import type { GatewayConfig } from '../config.js'
import { errors } from '../errors.js'
import { sha256 } from '../core/credentials.js'

/** Shortest client key accepted: a short key is guessable, whatever the comparison. */
export const MIN_CLIENT_KEY_LENGTH = 16

/** What src/security/*.ts enforce, derived once from the config and frozen. */
export interface SecurityPolicy {
  readonly production: boolean
  readonly passthrough: boolean
  /** SHA-256 digests of the client keys; empty when client auth is off. The keys themselves are not kept. */
  readonly clientKeyDigests: readonly Buffer[]
  /** `'*'`, an allow-list of origins, or undefined for no CORS headers. */
  readonly corsOrigins: '*' | readonly string[] | undefined
  readonly rateLimit: { readonly max: number, readonly windowMs: number } | undefined
  readonly graphql: {
    readonly maxDepth: number
    readonly maxFields: number
    readonly maxIds: number
    /** Operations in one batched POST. */
    readonly maxBatch: number
    readonly introspection: boolean
  }
  readonly pages: {
    readonly graphiql: boolean
    readonly docs: boolean
  }
}

/**
 * Client keys from `GATEWAY_API_KEYS`: comma-separated, blanks around commas
 * ignored. Errors never quote a key, only its position.
 */
export function parseClientKeys (raw: string | undefined): string[] {
  if (raw === undefined) return []
  const keys = raw.split(',').map((key) => key.trim())
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    if (key.length < MIN_CLIENT_KEY_LENGTH) {
      throw new errors.InvalidConfig(`Invalid GATEWAY_API_KEYS: key #${i + 1} is shorter than ${MIN_CLIENT_KEY_LENGTH} characters`)
    }
    // Visible ASCII only: it must fit in an HTTP header unchanged.
    if (!/^[\x21-\x7e]+$/.test(key)) {
      throw new errors.InvalidConfig(`Invalid GATEWAY_API_KEYS: key #${i + 1} has characters outside visible ASCII`)
    }
  }
  return keys
}

/** `CORS_ORIGINS`: `*`, or comma-separated origins such as `https://app.example.com`. */
export function parseCorsOrigins (raw: string | undefined): '*' | string[] | undefined {
  if (raw === undefined) return undefined
  const items = raw.split(',').map((item) => item.trim()).filter((item) => item !== '')
  if (items.length === 1 && items[0] === '*') return '*'
  if (items.length === 0) throw new errors.InvalidConfig('Invalid CORS_ORIGINS: no origin given')
  return items.map((item) => {
    let url: URL | undefined
    try { url = new URL(item) } catch {}
    // An origin is scheme://host[:port] and nothing else; browsers send it without a trailing slash.
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== item.replace(/\/$/, '')) {
      throw new errors.InvalidConfig(`Invalid CORS_ORIGINS: ${JSON.stringify(item)} is not an origin (scheme://host[:port]) or *`)
    }
    return url.origin
  })
}

/** Introspection, GraphiQL and /docs: on unless production, where each needs an explicit `true`. */
function enabled (setting: boolean | undefined, production: boolean): boolean {
  return setting ?? !production
}

export function securityPolicy (config: GatewayConfig): SecurityPolicy {
  const { security, graphql, production } = config
  return Object.freeze({
    production,
    passthrough: config.upstream.auth === 'passthrough',
    clientKeyDigests: Object.freeze(parseClientKeys(security.apiKeys).map(sha256)),
    corsOrigins: ((origins) => Array.isArray(origins) ? Object.freeze(origins) : origins)(parseCorsOrigins(security.corsOrigins)),
    rateLimit: security.rateLimitMax === undefined
      ? undefined
      : Object.freeze({ max: security.rateLimitMax, windowMs: security.rateLimitWindowMs }),
    graphql: Object.freeze({
      maxDepth: graphql.maxDepth,
      maxFields: graphql.maxFields,
      maxIds: config.limits.maxIdsPerRequest,
      maxBatch: graphql.maxBatch,
      introspection: enabled(graphql.introspection, production)
    }),
    pages: Object.freeze({
      graphiql: enabled(security.graphiql, production),
      docs: enabled(security.docs, production)
    })
  })
}
