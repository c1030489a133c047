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
const EXPOSED_HEADERS = ['x-cache', 'age', 'warning', 'retry-after', 'x-request-id', 'idempotent-replayed', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']

/**
 * Security headers (helmet, with the CSP above) for the HTML pages. Register
 * it inside the encapsulated context that holds the page routes: the JSON API
 * gains nothing from a CSP, and its hot path should not pay for one.
 */
export async function pageSecurityHeaders (app: FastifyInstance, { corsOrigins }: Pick<SecurityPolicy, 'corsOrigins'>): Promise<void> {
  const directives: Record<string, string[]> = {}
  for (const [name, values] of Object.entries(CONTENT_SECURITY_POLICY)) directives[name] = [...values]
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives },
    xFrameOptions: { action: 'deny' },
    crossOriginResourcePolicy: { policy: corsOrigins === undefined ? 'same-origin' : 'cross-origin' }
  })
}

/**
 * CORS only for the origins in CORS_ORIGINS. Registered before the auth
 * check, so a browser also gets CORS headers on a 401 and can read it, and a
 * preflight (which never carries credentials) is answered before it.
 */
export async function registerCors (app: FastifyInstance, policy: SecurityPolicy): Promise<void> {
  if (policy.corsOrigins === undefined) return
  await app.register(cors, {
    origin: policy.corsOrigins === '*' ? '*' : [...policy.corsOrigins],
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ['authorization', 'x-api-key', 'content-type', 'x-request-id', 'last-event-id', 'idempotency-key'],
    exposedHeaders: EXPOSED_HEADERS,
    // Keys travel in headers, never cookies.
    credentials: false,
    maxAge: 600,
    // Any OPTIONS is answered as a preflight, rather than a text/plain 400 when a header is missing.
    strictPreflight: false
  })
}
