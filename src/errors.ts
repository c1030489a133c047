import createError from '@fastify/error'

/**
 * Every error a client can see, in one place (as fastify's own errors.js).
 * Gateway errors carry a `GW_ERR_*` code; failures caused by CometAPI carry an
 * `UPSTREAM_*` code, which is also what GraphQL puts in `extensions.code`.
 * test/errors.test.ts checks that the codes are unique.
 */
export const errors = {
  BadRequest: createError('GW_ERR_BAD_REQUEST', '%s', 400),
  InvalidId: createError('GW_ERR_INVALID_ID', '%s', 400),
  TooManyIds: createError('GW_ERR_TOO_MANY_IDS', 'Too many ids: %d given, at most %d allowed per request', 400),
  TaskNotFound: createError('GW_ERR_TASK_NOT_FOUND', 'Task %s not found', 404),
  Unauthenticated: createError('UNAUTHENTICATED', '%s', 401),
  Overloaded: createError('GW_ERR_OVERLOADED', 'The gateway is overloaded: %s', 503),
  InvalidConfig: createError('GW_ERR_INVALID_CONFIG', '%s', 500),
  UpstreamError: createError('UPSTREAM_ERROR', 'Upstream call failed: %s', 502),
  UpstreamTimeout: createError('UPSTREAM_TIMEOUT', 'Upstream did not answer within %d ms', 504),
  UpstreamBadResponse: createError('UPSTREAM_BAD_RESPONSE', 'Upstream sent an unusable response: %s', 502),
  UpstreamUnavailable: createError('UPSTREAM_UNAVAILABLE', 'Upstream is unavailable: %s', 503),
  UpstreamRateLimited: createError('UPSTREAM_RATE_LIMITED', 'Upstream is rate limiting the gateway: %s', 503)
} as const

export type GatewayErrorName = keyof typeof errors

/** The shape every coded error shares; GraphQL copies `extensions` into its error entries. */
export interface GatewayError extends Error {
  code: string
  statusCode: number
  /** Seconds a client should wait before retrying, sent as `Retry-After`. */
  retryAfter?: number
  extensions?: { code: string }
}

/** True for errors created from the table above. */
export function isGatewayError (err: unknown): err is GatewayError {
  return err instanceof Error && typeof (err as GatewayError).code === 'string' &&
    typeof (err as GatewayError).statusCode === 'number'
}

/** Adds the GraphQL `extensions.code` that graphql-js copies from an original error. */
export function withExtensions<E extends GatewayError> (err: E): E {
  err.extensions = { code: err.code }
  return err
}
