import { createHash, timingSafeEqual } from 'node:crypto'

/** A bearer token from an Authorization header, or undefined. */
export function bearerToken (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1]
}

/** SHA-256 of a UTF-8 string: secrets are compared and keyed by digest, never by value. */
export function sha256 (value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}

/**
 * Constant-time check of a presented secret's digest against known digests:
 * all are 32 bytes and every one is compared (no early exit), so timing tells
 * nothing of the secret's length, its content, or which one matched.
 */
export function matchesDigest (digest: Buffer, digests: readonly Buffer[]): boolean {
  let matched = false
  for (const expected of digests) matched = timingSafeEqual(digest, expected) || matched
  return matched
}

/** Short content hash for cache-busting asset URLs and ETags. */
export function contentVersion (body: string | Buffer, length = 12): string {
  return createHash('sha256').update(body).digest('base64url').slice(0, length)
}
