import { createHash } from 'node:crypto'

/**
 * Who a lookup is made for. `partition` is what batches and cache entries are
 * keyed by (a hash of the credential under pass-through tenancy, a constant
 * otherwise); `credential` is the raw upstream key, only ever held while a
 * call is waiting to be sent.
 */
export interface Scope {
  readonly partition: string
  readonly credential: string | undefined
}

/** With one gateway-wide key every client shares one partition. */
export const SHARED_SCOPE: Scope = Object.freeze({ partition: 'shared', credential: undefined })

/**
 * The partition of a pass-through credential: a SHA-256 digest, so the
 * raw key is never used as a map key, cached, logged or put in a metric.
 */
export function partitionOf (credential: string): string {
  return 'cred:' + createHash('sha256').update(credential).digest('base64url')
}

/** The scope of a pass-through credential. */
export function scopeOf (credential: string): Scope {
  return { partition: partitionOf(credential), credential }
}
