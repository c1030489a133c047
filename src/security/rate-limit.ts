import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors, type GatewayError } from '../errors.js'
import type { SecurityPolicy } from './policy.js'
import { isPublicRoute } from './client-auth.js'
import { sharedRateLimitStore } from '../shared/rate-limit-store.js'

export type RequestLimiter = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

/**
 * @fastify/rate-limit, keyed by the client key's digest when the request
 * presents a valid one, else by IP address (a pass-through credential is not
 * verified here, so it cannot be a key: random ones would each get a fresh
 * budget). Returns the limiter for the security plugin to call in its own
 * onRequest hook, before the auth check, so failed auth attempts count too;
 * the plugin's per-route hooks would run after every app-level hook.
 */
export async function registerRateLimit (app: FastifyInstance, limit: NonNullable<SecurityPolicy['rateLimit']>, client: (request: FastifyRequest) => string,
  onSharedTierError: () => void = () => {}): Promise<RequestLimiter> {
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
    errorResponseBuilder: (_request, context) => {
      const err: GatewayError = new errors.RateLimited(`at most ${context.max} requests per ${limit.windowMs / 1000} s; retry in ${context.after}`)
      err.retryAfter = Math.max(1, Math.ceil(context.ttl / 1000))
      return err
    }
  })
  return app.rateLimit() as RequestLimiter
}
