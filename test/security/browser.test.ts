import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import type { FastifyInstance } from 'fastify'
import { normalizeConfig } from '../../src/config.js'
import { securityPolicy } from '../../src/security/policy.js'
import { setup } from '../helpers/gateway.js'
import { launchBrowser, openPage } from '../helpers/browser.js'

const KEY = 'gw-client-key-alpha-0123456789'
const PAGES = ['/graphiql', '/docs', '/']

/** Same-origin URLs a page references in src= and href=, resolved against the page. */
function assetUrls (html: string, page: string): string[] {
  return [...html.matchAll(/(?:src|href)="([^"]+)"/g)]
    .map((m) => new URL(m[1]!.replace(/&amp;/g, '&'), `http://gateway${page}`))
    .filter((url) => url.host === 'gateway')
    .map((url) => url.pathname + url.search)
}

async function checkPage (t: Test, app: FastifyInstance, page: string, headers: Record<string, string> = {}): Promise<void> {
  const res = await app.inject({ url: page, headers })
  t.equal(res.statusCode, 200, `${page} loads`)
  t.match(res.headers['content-type'], /^text\/html/)
  const csp = String(res.headers['content-security-policy'])
  t.match(csp, /script-src 'self'(;|$)/, `${page}: scripts from the gateway only, no inline or eval`)
  t.match(csp, /connect-src 'self' ws: wss:/)
  t.match(csp, /frame-ancestors 'none'/)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['x-frame-options'], 'DENY')
  const assets = assetUrls(res.body, page)
  t.ok(assets.length > 0, `${page} references assets`)
  for (const url of assets) {
    const asset = await app.inject({ url, headers })
    t.equal(asset.statusCode, 200, `${page} → ${url}`)
  }
}

t.test('security headers with a CSP on every HTML page; the pages and their assets load', async (t) => {
  const { app } = await setup(t)
  for (const page of PAGES) await checkPage(t, app, page)
  // Swagger UI reads the spec from here.
  t.equal((await app.inject({ url: '/docs/json' })).statusCode, 200)
  // The headers are the pages' own: JSON API responses (the hot path) do not pay for a CSP.
  const api = await app.inject({ url: '/healthz' })
  t.equal(api.headers['content-security-policy'], undefined)
})

t.test('with client keys the pages need the key like every other route', async (t) => {
  const { app } = await setup(t, { security: { apiKeys: KEY } })
  for (const page of PAGES) {
    const res = await app.inject({ url: page })
    t.equal(res.statusCode, 401, `${page} without a key`)
    t.equal(res.json().code, 'UNAUTHENTICATED', 'a JSON 401, refused before the page is built')
    await checkPage(t, app, page, { 'x-api-key': KEY })
  }
})

t.test('no CORS_ORIGINS: no CORS headers at all', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/healthz', headers: { origin: 'https://evil.example' } })
  t.equal(res.headers['access-control-allow-origin'], undefined)
  const preflight = await app.inject({ method: 'OPTIONS', url: '/graphql', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.equal(preflight.headers['access-control-allow-origin'], undefined)
  t.ok(preflight.statusCode >= 400)
  t.match(preflight.headers['content-type'], /json/)
  t.equal((await app.inject({ url: '/graphiql' })).headers['cross-origin-resource-policy'], 'same-origin')
})

t.test('CORS_ORIGINS: an allow-list', async (t) => {
  const allowed = 'https://app.example.com'
  const { app, upstream } = await setup(t, { security: { corsOrigins: `${allowed}, http://localhost:5173`, apiKeys: KEY } })
  upstream.add({ id: '1' })

  // A preflight carries no credentials: it is answered before client auth.
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/graphql',
    headers: { origin: allowed, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-api-key' }
  })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], allowed)
  t.match(preflight.headers['access-control-allow-headers'], /x-api-key/)
  t.match(preflight.headers['access-control-allow-headers'], /authorization/)
  t.match(preflight.headers['access-control-allow-headers'], /idempotency-key/, 'a browser app may send Idempotency-Key on submits')
  t.match(preflight.headers['access-control-allow-methods'], /POST/)
  t.equal(preflight.headers['access-control-allow-credentials'], undefined, 'no cookies')

  const ok = await app.inject({ url: '/v1/tasks/1', headers: { origin: allowed, 'x-api-key': KEY } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers['access-control-allow-origin'], allowed)
  t.match(ok.headers['access-control-expose-headers'], /x-cache/)
  t.match(ok.headers['access-control-expose-headers'], /retry-after/)
  t.match(ok.headers['access-control-expose-headers'], /idempotent-replayed/)
  t.match(ok.headers.vary, /origin/i)

  const denied = await app.inject({ url: '/v1/tasks/1', headers: { origin: 'https://evil.example', 'x-api-key': KEY } })
  t.equal(denied.headers['access-control-allow-origin'], undefined, 'another origin gets no grant')

  const unauth = await app.inject({ url: '/v1/tasks/1', headers: { origin: allowed } })
  t.equal(unauth.statusCode, 401)
  t.equal(unauth.headers['access-control-allow-origin'], allowed, 'a browser can read the 401')
  t.equal((await app.inject({ url: '/graphiql', headers: { 'x-api-key': KEY } })).headers['cross-origin-resource-policy'], 'cross-origin',
    'pages may be embedded by an allowed origin')
})

t.test('CORS_ORIGINS=* and invalid values', async (t) => {
  const { app } = await setup(t, { security: { corsOrigins: '*' } })
  const res = await app.inject({ url: '/healthz', headers: { origin: 'https://anywhere.example' } })
  t.equal(res.headers['access-control-allow-origin'], '*')

  for (const bad of ['app.example.com', 'https://app.example.com/path', 'ftp://x.example', ' , ']) {
    t.throws(() => securityPolicy(normalizeConfig({ security: { corsOrigins: bad } })), /CORS_ORIGINS/, bad)
  }
})

/** A WebSocket upgrade to the gateway's /graphql: 'open', or the refusal's status and code (a GraphQL error body, as /graphql answers). */
async function upgrade (app: FastifyInstance, origin?: string): Promise<string> {
  const port = (app.server.address() as AddressInfo).port
  return await new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/graphql`, 'graphql-transport-ws', { headers: origin === undefined ? {} : { origin } })
    ws.on('open', () => { ws.close(); resolve('open') })
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve(`HTTP ${res.statusCode ?? 0} ${(JSON.parse(body) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code}`))
    })
    ws.on('error', (err) => resolve(`error ${err.message}`))
  })
}

t.test('WebSocket upgrades: without CORS_ORIGINS only the gateway\'s own origin (or none) may open one', async (t) => {
  const { app } = await setup(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  t.equal(await upgrade(app), 'open', 'no Origin: a service, not a browser')
  t.equal(await upgrade(app, `http://127.0.0.1:${port}`), 'open', 'the gateway\'s own origin')
  t.equal(await upgrade(app, `HTTP://127.0.0.1:${port}`), 'open', 'compared as an origin, not as text')
  for (const origin of ['https://evil.example', `http://127.0.0.1:${port + 1}`, `http://localhost:${port}`, 'null', 'not a url']) {
    t.equal(await upgrade(app, origin), 'HTTP 403 GW_ERR_ORIGIN_NOT_ALLOWED', origin)
  }
  const refused = await app.inject({ url: '/graphql', headers: { origin: 'https://evil.example', connection: 'upgrade', upgrade: 'websocket' } })
  t.strictSame([refused.statusCode, refused.json()], [403, {
    errors: [{
      message: 'Origin "https://evil.example" may not open a WebSocket to this gateway: only the gateway\'s own origin is allowed (set CORS_ORIGINS to allow others)',
      extensions: { code: 'GW_ERR_ORIGIN_NOT_ALLOWED' }
    }]
  }])
  t.equal((await app.inject({ url: '/graphql?query={__typename}', headers: { origin: 'https://evil.example' } })).statusCode, 200, 'a plain GET is CORS\'s business, not this check\'s')
})

t.test('WebSocket upgrades: CORS_ORIGINS lists the origins that may open one', async (t) => {
  const allowed = 'https://app.example.com'
  const { app } = await setup(t, { security: { corsOrigins: `${allowed}, http://localhost:5173` } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  t.equal(await upgrade(app, allowed), 'open')
  t.equal(await upgrade(app, 'http://localhost:5173'), 'open')
  t.equal(await upgrade(app, 'https://evil.example'), 'HTTP 403 GW_ERR_ORIGIN_NOT_ALLOWED')
  t.equal(await upgrade(app, 'http://app.example.com'), 'HTTP 403 GW_ERR_ORIGIN_NOT_ALLOWED', 'the scheme is part of the origin')
  t.equal(await upgrade(app, `http://127.0.0.1:${port}`), 'open', 'same-origin stays open, as it does for REST (GraphiQL)')
  t.equal(await upgrade(app), 'open')

  const { app: open } = await setup(t, { security: { corsOrigins: '*' } })
  await open.listen({ port: 0, host: '127.0.0.1' })
  t.equal(await upgrade(open, 'https://anywhere.example'), 'open', 'CORS_ORIGINS=* allows every origin')
})

t.test('a page on another origin cannot open a GraphQL WebSocket from the user\'s browser; the gateway\'s own page can', async (t) => {
  t.setTimeout(120_000)
  const { app } = await setup(t)
  const { app: other } = await setup(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  await other.listen({ port: 0, host: '127.0.0.1' })
  const target = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/graphql`
  const browser = await launchBrowser(t)
  const tryFrom = async (origin: string): Promise<string> => {
    const { page } = await openPage(browser, origin)
    await page.goto(`${origin}/`)
    return await page.evaluate(async (url) => await new Promise<string>((resolve) => {
      const ws = new WebSocket(url, 'graphql-transport-ws')
      ws.onopen = () => { ws.close(); resolve('open') }
      ws.onclose = (event) => resolve(`closed ${event.code}`)
    }), target)
  }
  t.equal(await tryFrom(`http://127.0.0.1:${(other.server.address() as AddressInfo).port}`), 'closed 1006', 'cross-site WebSocket hijacking is refused')
  t.equal(await tryFrom(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`), 'open', 'same origin')
})

t.test('GraphiQL, Swagger UI and the dashboard work under the served CSP in headless Chromium', async (t) => {
  t.setTimeout(120_000)
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1', status: 'SUCCESS', progress: '100%' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const browser = await launchBrowser(t)

  const docs = await openPage(browser, origin)
  await docs.page.goto(`${origin}/docs`)
  await docs.page.locator('.swagger-ui .info .title').waitFor({ state: 'visible', timeout: 30_000 })
  await docs.page.locator('.opblock').first().waitFor({ state: 'visible', timeout: 30_000 })
  t.same(docs.log.errors, [], 'Swagger UI: no page errors or CSP violations')
  t.same(docs.log.failed, [], 'Swagger UI: no failed requests')

  const gql = await openPage(browser, origin)
  await gql.page.goto(`${origin}/graphiql`)
  await gql.page.locator('.graphiql-execute-button').waitFor({ state: 'visible', timeout: 30_000 })
  // The schema comes from introspection: the doc explorer lists the Query type once it loaded.
  await gql.page.waitForFunction(() => document.querySelector('.graphiql-container') !== null, undefined, { timeout: 30_000 })
  await gql.page.locator('.graphiql-execute-button').click()
  await gql.page.waitForFunction(() => {
    const el = document.querySelector('.result-window .CodeMirror') as unknown as { CodeMirror?: { getValue (): string } } | null
    return (el?.CodeMirror?.getValue() ?? '').includes('"data"')
  }, undefined, { timeout: 30_000 })
  t.same(gql.log.errors, [], 'GraphiQL: no page errors or CSP violations')
  t.same(gql.log.failed, [], 'GraphiQL: no failed requests')

  const dash = await openPage(browser, origin)
  await dash.page.goto(`${origin}/`)
  await dash.page.waitForLoadState('load')
  t.same(dash.log.errors.filter((e) => /Content Security Policy|Refused/.test(e)), [], 'dashboard: no CSP violations')
})
