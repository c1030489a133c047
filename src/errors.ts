import createError from '@fastify/error'

/**
 * Every error a client can see, in one place (as fastify's own errors.js).
 * Gateway errors carry a `GW_ERR_*` code; failures caused by CometAPI carry an
 * `UPSTREAM_*` code, which is also what GraphQL puts in `extensions.code`.
 * test/errors.test.ts checks that the codes are unique, and that every code
 * string in src/ and openapi.yaml is one of these.
 */
export const errors = {
  Internal: createError('GW_ERR_INTERNAL', 'Internal Server Error', 500),
  RouteNotFound: createError('GW_ERR_ROUTE_NOT_FOUND', 'Route %s %s not found', 404),
  /** A known path asked with a method it does not answer; sent with `Allow`. */
  MethodNotAllowed: createError('GW_ERR_METHOD_NOT_ALLOWED', '%s', 405),
  /** A 4xx raised by fastify or a plugin without a code of its own; the status is the original's. */
  Request: createError('GW_ERR_REQUEST', '%s', 400),
  BadRequest: createError('GW_ERR_BAD_REQUEST', '%s', 400),
  BodyTooLarge: createError('GW_ERR_BODY_TOO_LARGE', '%s', 413),
  UnsupportedMediaType: createError('GW_ERR_UNSUPPORTED_MEDIA_TYPE', '%s', 415),
  RequestTimeout: createError('GW_ERR_REQUEST_TIMEOUT', 'The request did not arrive in full within %d ms (REQUEST_TIMEOUT_MS)', 408),
  HeadersTooLarge: createError('GW_ERR_HEADERS_TOO_LARGE', 'The request headers are larger than the server accepts', 431),
  ShuttingDown: createError('GW_ERR_SHUTTING_DOWN', 'The gateway is shutting down: retry, and another instance will answer', 503),
  InvalidId: createError('GW_ERR_INVALID_ID', '%s', 400),
  TooManyIds: createError('GW_ERR_TOO_MANY_IDS', 'Too many ids: %d given, at most %d allowed per request', 400),
  TaskNotFound: createError('GW_ERR_TASK_NOT_FOUND', 'Task %s not found', 404),
  Unauthenticated: createError('UNAUTHENTICATED', '%s', 401),
  RateLimited: createError('GW_ERR_RATE_LIMITED', 'Rate limit exceeded: %s', 429),
  QueryTooComplex: createError('GW_ERR_QUERY_TOO_COMPLEX', '%s', 400),
  /** The code of a GraphQL request error (syntax, validation, variable values), as Apollo and its clients name it. */
  GraphQLValidation: createError('GRAPHQL_VALIDATION_FAILED', '%s', 400),
  SubscriptionTransport: createError('GW_ERR_SUBSCRIPTION_TRANSPORT', 'Subscriptions run over WebSocket at /graphql (graphql-transport-ws) or as Server-Sent Events at /v1/tasks/stream, not over HTTP %s', 400),
  OriginNotAllowed: createError('GW_ERR_ORIGIN_NOT_ALLOWED', 'Origin %s may not open a WebSocket to this gateway: %s', 403),
  /** Too many operations in one GraphQL batch; a size limit like the body's, hence 413. */
  BatchTooLarge: createError('GW_ERR_BATCH_TOO_LARGE', 'A batch of %d GraphQL operations; at most %d allowed per request (GRAPHQL_MAX_BATCH)', 413),
  Overloaded: createError('GW_ERR_OVERLOADED', 'The gateway is overloaded: %s', 503),
  InvalidConfig: createError('GW_ERR_INVALID_CONFIG', '%s', 500),
  WatchTooManyIds: createError('GW_ERR_WATCH_TOO_MANY_IDS', 'Too many ids to watch: %d given, at most %d per stream (WATCH_MAX_IDS_PER_CONNECTION)', 400),
  WatchTooManyStreams: createError('GW_ERR_WATCH_TOO_MANY_STREAMS', 'Too many live streams: this client already has %d open, the most allowed (WATCH_MAX_CONNECTIONS_PER_CLIENT)', 429),
  WatchFull: createError('GW_ERR_WATCH_FULL', 'The gateway already watches its maximum of %d task ids (WATCH_MAX_IDS); try again later', 503),
  IdempotencyKeyInvalid: createError('GW_ERR_IDEMPOTENCY_KEY_INVALID', 'Invalid idempotency key: %s', 400),
  IdempotencyKeyInUse: createError('GW_ERR_IDEMPOTENCY_KEY_IN_USE', 'A submit with this idempotency key is still in progress; retry once it has been answered', 409),
  IdempotencyKeyReused: createError('GW_ERR_IDEMPOTENCY_KEY_REUSED', 'This idempotency key was already used for a submit with a different body; use a new key for a new submit', 422),
  UpstreamError: createError('UPSTREAM_ERROR', 'Upstream call failed: %s', 502),
  UpstreamTimeout: createError('UPSTREAM_TIMEOUT', 'Upstream did not answer within %d ms', 504),
  UpstreamBadResponse: createError('UPSTREAM_BAD_RESPONSE', 'Upstream sent an unusable response: %s', 502),
  UpstreamUnavailable: createError('UPSTREAM_UNAVAILABLE', 'Upstream is unavailable: %s', 503),
  UpstreamRateLimited: createError('UPSTREAM_RATE_LIMITED', 'Upstream is rate limiting the gateway: %s', 503),
  /** Pass-through: upstream refused the client's own credential (401), or its access (403), or rate limits it (429). */
  UpstreamUnauthorized: createError('UPSTREAM_UNAUTHORIZED', 'Upstream refused your credential: %s', 401),
  UpstreamForbidden: createError('UPSTREAM_FORBIDDEN', 'Upstream refused access with your credential: %s', 403),
  UpstreamCredentialRateLimited: createError('UPSTREAM_CREDENTIAL_RATE_LIMITED', 'Upstream is rate limiting your credential: %s', 429),
  /** Key mode: upstream refused the gateway's own credential, an outage only the operator can fix. */
  UpstreamKeyRejected: createError('UPSTREAM_KEY_REJECTED', 'Upstream refused the gateway\'s credential (COMETAPI_KEY): %s', 502),
  UpstreamCircuitOpen: createError('UPSTREAM_CIRCUIT_OPEN', 'Upstream calls are paused by the circuit breaker: %s', 503)
} as const

// graphql-js copies an original error's `extensions` into the GraphQL error,
// so every coded error shows its code as `extensions.code` in GraphQL.
for (const ErrorClass of Object.values(errors)) {
  Object.defineProperty(ErrorClass.prototype, 'extensions', {
    get (this: { code: string }) { return { code: this.code } }
  })
}

/** The shape every coded error shares; GraphQL copies `extensions` into its error entries. */
export interface GatewayError extends Error {
  code: string
  statusCode: number
  /** Seconds a client should wait before retrying, sent as `Retry-After`. */
  retryAfter?: number
  /** HTTP status upstream answered with, when the failure was an answer; lets the breaker ignore 4xx. */
  upstreamStatus?: number
  extensions?: { code: string }
}

/**
 * True when upstream answered with a 4xx other than 429: it refused the
 * request itself (a revoked or wrong key, typically), and asking again would
 * be refused the same way. Such an answer is never covered up by a stale copy.
 */
export function isUpstreamRefusal (err: unknown): boolean {
  const status = (err as GatewayError | undefined)?.upstreamStatus
  return status !== undefined && status >= 400 && status < 500 && status !== 429
}

/**
 * True when upstream answered about the client's own credential (under
 * pass-through): refused it, or rate limits it. The client gets the answer as
 * its own 4xx; it is the client's business, logged at info, not a failure.
 */
export function isCredentialAnswer (err: unknown): boolean {
  const { upstreamStatus, statusCode } = (err ?? {}) as Partial<GatewayError>
  return upstreamStatus !== undefined && statusCode !== undefined && statusCode < 500
}

const ERROR_CLASSES: ReadonlyArray<abstract new (...args: never[]) => Error> = Object.values(errors)

/** True for errors created from the table above: by class, so a fastify or plugin error with a code of its own is not one. */
export function isGatewayError (err: unknown): err is GatewayError {
  return err instanceof Error && ERROR_CLASSES.some((ErrorClass) => err instanceof ErrorClass)
}
