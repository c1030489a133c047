import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors, type GatewayError } from '../errors.js'
import type { SecurityPolicy } from './policy.js'
import { isPublicRoute } from './client-auth.js'
import { sharedRateLimitStore } from '../shared/rate-limit-store.js'

type Limit = NonNullable<SecurityPolicy['rateLimit']>

export type RequestLimiter = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

/** One more request of a request's client; throws GW_ERR_RATE_LIMITED when that is over the limit. */
export type RequestCounter = (request: FastifyRequest) => Promise<void>

/** The refusal, the same wherever the limit is hit. */
function rateLimited (limit: Limit, max: number, ttlMs: number): GatewayError {
  const seconds = Math.max(1, Math.ceil(ttlMs / 1000))
  const err: GatewayError = new errors.RateLimited(`at most ${max} requests per ${limit.windowMs / 1000} s; retry in ${seconds} s`)
  err.retryAfter = seconds
  return err
}

/**
 * @fastify/rate-limit, keyed by the client key's digest when the request
 * presents a valid one, else by IP address (a pass-through credential is not
 * verified here, so it cannot be a key: random ones would each get a fresh
 * budget). Returns the limiter for the security plugin to call in its own
 * onRequest hook, before the auth check, so failed auth attempts count too;
 * the plugin's per-route hooks would run after every app-level hook. Also
 * returns a counter on the same store and key, for what is a request without
 * being an HTTP request: a GraphQL subscribe on an open WebSocket.
 */
export async function registerRateLimit (app: FastifyInstance, limit: Limit, client: (request: FastifyRequest) => string,
  onSharedTierError: () => void = () => {}): Promise<{ hook: RequestLimiter, count: RequestCounter }> {
  await app.register(rateLimit, {
    global: false,
    // With REDIS_URL the counters are the cluster's (in Redis), else this process's.
    store: app.redis === undefined ? undefined : sharedRateLimitStore(app.redis, onSharedTierError),
    max: limit.max,
    timeWindow: limit.windowMs,
    keyGenerator: client,
    // Health probes must not be throttled into a restart.
    allowList: (request) => isPublicRoute(request),
    // Thrown, so the route's error handler answers it: the gateway's JSON body on REST, `errors` on GraphQL.
    // The plugin has already set Retry-After and the x-ratelimit-* headers.
    errorResponseBuilder: (_request, context) => rateLimited(limit, context.max, context.ttl)
  })
  const check = app.createRateLimit()
  return {
    hook: app.rateLimit() as RequestLimiter,
    async count (request) {
      const result = await check(request)
      if (!result.isAllowed && result.isExceeded) throw rateLimited(limit, result.max, result.ttl)
    }
  }
}
