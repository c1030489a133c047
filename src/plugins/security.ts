import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { securityPolicy, type SecurityPolicy } from '../security/policy.js'
import { clientAuthHook, clientIdentifier } from '../security/client-auth.js'
import { registerRateLimit, type RequestCounter } from '../security/rate-limit.js'
import { registerCors, websocketOriginCheck } from '../security/browser.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The policy derived once from the config (client keys hashed), and who a request's client is. */
    security: {
      readonly policy: SecurityPolicy
      /** `key:<digest>` for an accepted client key, else undefined. */
      readonly identify: (request: FastifyRequest) => string | undefined
      /**
       * Who a request counts against (rate limit, live streams per client):
       * its client key when it has one, else its address. Never a
       * pass-through credential: anyone can make those up.
       */
      readonly client: (request: FastifyRequest) => string
      /**
       * Counts one more request of this client against the rate limit, for
       * what is not an HTTP request (a subscribe on a WebSocket); throws
       * GW_ERR_RATE_LIMITED when it is over. Does nothing without RATE_LIMIT_MAX.
       */
      readonly countRequest: RequestCounter
    }
  }
}

/**
 * CORS, then the rate limit, then client auth, in this order on every
 * request, then on WebSocket routes the upgrade's origin (all onRequest,
 * before any body is read). Register before the routes: routes mark
 * themselves open with `config: { public: true }`. Each hook is added only
 * when its setting is on, so the default configuration costs the hot path
 * nothing. Page headers (CSP) are `pageSecurityHeaders`.
 */
export const security = fp<{ config: GatewayConfig, onSharedTierError?: () => void }>(async function security (app: FastifyInstance, { config, onSharedTierError }) {
  const policy: SecurityPolicy = securityPolicy(config)
  const identify = clientIdentifier(policy)
  const client = (request: FastifyRequest): string => identify(request) ?? 'ip:' + request.ip
  let countRequest: RequestCounter = async () => {}

  await registerCors(app, policy)
  if (policy.rateLimit !== undefined) {
    const limit = await registerRateLimit(app, policy.rateLimit, client, onSharedTierError)
    app.addHook('onRequest', limit.hook)
    countRequest = limit.count
  }
  app.decorate('security', { policy, identify, client, countRequest })
  if (policy.clientKeyDigests.length > 0 || policy.passthrough) app.addHook('onRequest', clientAuthHook(policy, identify))
  // A browser opens a WebSocket from any site with the user's network access: a route that accepts
  // upgrades (GraphQL's) checks their origin first, so other routes do not pay for it.
  const checkOrigin = websocketOriginCheck(policy)
  if (checkOrigin !== undefined) {
    app.addHook('onRoute', (route) => {
      if ('wsHandler' in route || 'websocket' in route) route.onRequest = [checkOrigin, ...[route.onRequest ?? []].flat()]
    })
  }

  // Bodies are JSON (and application/graphql on /graphql). A text/plain POST is a CORS "simple
  // request" any web page can send without a preflight; without a parser it gets 415.
  if (app.hasContentTypeParser('text/plain')) app.removeContentTypeParser('text/plain')

  if (policy.production && policy.clientKeyDigests.length === 0) {
    app.log.warn({ setting: 'GATEWAY_API_KEYS' }, policy.passthrough
      ? '!!! SECURITY WARNING: production without GATEWAY_API_KEYS: any client that reaches this port can use the gateway with its own CometAPI key. Set GATEWAY_API_KEYS. !!!'
      : '!!! SECURITY WARNING: production without GATEWAY_API_KEYS: any client that reaches this port reads tasks with the gateway\'s CometAPI key. Set GATEWAY_API_KEYS. !!!')
  }
}, { name: 'security', dependencies: ['tenancy', 'redis'] })
