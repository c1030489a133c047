import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler } from 'fastify'
import { errors } from '../errors.js'
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

/** True when `origin` is the gateway itself, as the client reached it (its Host header). */
function isOwnOrigin (origin: URL, host: string | undefined): boolean {
  if (host === undefined || host === '') return false
  try {
    // Parsed with the origin's scheme, so a default port written out (Host: x:443) matches one left out.
    return new URL(`${origin.protocol}//${host}`).host === origin.host
  } catch {
    return false
  }
}

/**
 * An onRequest hook for routes that accept WebSocket upgrades, refusing an
 * upgrade whose `Origin` may not read from the gateway; undefined when every
 * origin may (CORS_ORIGINS=*). A browser opens a WebSocket to any host with
 * the user's network access and no CORS check, so the server must check:
 * the origins of CORS_ORIGINS, else (REST then sends no CORS headers, and a
 * browser reads same-origin only) just the gateway's own. Same-origin is
 * always allowed, as on REST, and so are clients that send no Origin
 * (services, not browsers).
 */
export function websocketOriginCheck ({ corsOrigins }: Pick<SecurityPolicy, 'corsOrigins'>): onRequestHookHandler | undefined {
  if (corsOrigins === '*') return undefined
  const listed = new Set(corsOrigins)
  const rule = corsOrigins === undefined ? 'only the gateway\'s own origin is allowed (set CORS_ORIGINS to allow others)' : 'it is not in CORS_ORIGINS'
  return function checkWebSocketOrigin (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const origin = request.headers.origin
    if (origin === undefined || request.headers.upgrade?.toLowerCase() !== 'websocket') return done()
    let url: URL | undefined
    try { url = new URL(origin) } catch {}
    if (url !== undefined && (listed.has(url.origin) || isOwnOrigin(url, request.host))) return done()
    done(new errors.OriginNotAllowed(JSON.stringify(origin), rule))
  }
}
