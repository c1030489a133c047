import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'
import type { SecurityPolicy } from './policy.js'

/**
 * One policy for every page the gateway serves (GraphiQL, Swagger UI at
 * /docs, the dashboard) and harmless on JSON: scripts only from the gateway's
 * own files (the pages load local assets and no inline code), inline styles
 * (GraphiQL and Swagger UI set style attributes), images from anywhere over
 * http(s) (task images live on upstream hosts), and fetch/WebSocket back to
 * the gateway (GraphiQL's subscriptions use ws:/wss:).
 */
export const CONTENT_SECURITY_POLICY: Readonly<Record<string, readonly string[]>> = Object.freeze({
  defaultSrc: ["'self'"],
  baseUri: ["'self'"],
  scriptSrc: ["'self'"],
  scriptSrcAttr: ["'none'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:', 'https:', 'http:'],
  fontSrc: ["'self'", 'data:'],
  connectSrc: ["'self'", 'ws:', 'wss:'],
  objectSrc: ["'none'"],
  frameAncestors: ["'none'"],
  formAction: ["'self'"]
})

/** Headers a browser client may read from a cross-origin response. */
const EXPOSED_HEADERS = ['x-cache', 'age', 'warning', 'retry-after', 'x-request-id', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']

/**
 * Security headers on every response (so on every HTML page, whoever adds
 * it), and CORS only for the origins in CORS_ORIGINS. Registered before the
 * auth check, so a browser also gets CORS headers on a 401 and can read it,
 * and a preflight (which never carries credentials) is answered before it.
 */
export async function registerBrowserSafety (app: FastifyInstance, policy: SecurityPolicy): Promise<void> {
  const directives: Record<string, string[]> = {}
  for (const [name, values] of Object.entries(CONTENT_SECURITY_POLICY)) directives[name] = [...values]
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives },
    xFrameOptions: { action: 'deny' },
    // Images proxied at /mj/image/:id may be embedded by an allowed origin; otherwise same-origin only.
    crossOriginResourcePolicy: { policy: policy.corsOrigins === undefined ? 'same-origin' : 'cross-origin' }
  })

  if (policy.corsOrigins === undefined) return
  await app.register(cors, {
    origin: policy.corsOrigins === '*' ? '*' : [...policy.corsOrigins],
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ['authorization', 'x-api-key', 'content-type', 'x-request-id', 'last-event-id'],
    exposedHeaders: EXPOSED_HEADERS,
    // Keys travel in headers, never cookies.
    credentials: false,
    maxAge: 600,
    // Any OPTIONS is answered as a preflight, rather than a text/plain 400 when a header is missing.
    strictPreflight: false
  })
}
