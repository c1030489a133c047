import { readFileSync } from 'node:fs'
import { assetVersion, jsonForHtml } from '../http/html.js'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { DemoDeps } from '../plugins/gateway.js'
import { STREAM_PATH } from './stream.js'

export interface DashboardOptions {
  /** Demo mode: the simulator's seeded ids, listed at once, and the prompt box and task buttons are shown. */
  demoTaskIds?: readonly string[]
  /** Demo mode: the simulator's keep-alive tasks, which the page adds as they start. */
  demo?: DemoDeps
}

// Resolved from the repository root, so the same path works from src/ (tsx) and dist/ (built).
const DIR = new URL('../../src/dashboard/', import.meta.url)
const DEMO_FEED_PATH = '/dashboard/demo-tasks'
const DEMO_FEED_POLL_MS = 5_000
/** Most keep-alive cards the page shows; older final ones leave it. */
const DEMO_FEED_CARDS = 6

interface Asset {
  readonly body: Buffer
  readonly type: string
  readonly version: string
}

function asset (file: string, type: string): Asset {
  const body = readFileSync(new URL(file, DIR))
  return { body, type, version: assetVersion(body) }
}

/** Sends a static asset, or 304 when the client already has this version. */
function sendAsset (request: FastifyRequest, reply: FastifyReply, file: Asset, cacheControl: string): FastifyReply {
  const etag = `"${file.version}"`
  void reply.header('cache-control', cacheControl).header('etag', etag)
  const seen = request.headers['if-none-match']
  if (typeof seen === 'string' && seen.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) return reply.code(304).send()
  return reply.type(file.type).send(file.body)
}

/**
 * `GET /`: a small live dashboard (plain HTML, CSS and JS, no framework, no
 * inline script) that follows tasks over the SSE stream. In demo mode it lists
 * the demo tasks, adds the simulator's keep-alive tasks as they start, and
 * offers a prompt box, the buttons of finished tasks and the prompt of MODAL
 * tasks, all posting to `/mj/submit/*`. Also `/favicon.ico`, which every
 * page's browser asks for.
 */
export default async function dashboardRoutes (app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const { config } = app.gateway
  const assets = {
    'dashboard.css': asset('dashboard.css', 'text/css; charset=utf-8'),
    'dashboard.js': asset('dashboard.js', 'text/javascript; charset=utf-8'),
    'actions.js': asset('actions.js', 'text/javascript; charset=utf-8'),
    'favicon.svg': asset('favicon.svg', 'image/svg+xml')
  }
  const favicon = asset('favicon.ico', 'image/x-icon')
  let template = readFileSync(new URL('index.html', DIR), 'utf8')
  for (const [name, file] of Object.entries(assets)) template = template.replaceAll(`/dashboard/${name}?v=__VERSION__`, `/dashboard/${name}?v=${file.version}`)
  const demo = opts.demoTaskIds !== undefined
  const passthrough = config.upstream.auth === 'passthrough'
  let page: string | undefined

  // Built on first request: by then every route is registered, so hasRoute sees the pass-through ones.
  function render (): string {
    const canSubmit = demo && app.hasRoute({ method: 'POST', url: '/mj/submit/:action' })
    page ??= template.replace('__CONFIG__', jsonForHtml({
      demo,
      passthrough,
      demoIds: opts.demoTaskIds ?? [],
      stream: STREAM_PATH,
      maxIds: config.watch.maxIdsPerConnection,
      // Submits spend upstream credit, so only the demo's page offers them.
      submit: canSubmit ? { imagine: '/mj/submit/imagine', action: '/mj/submit/action', modal: '/mj/submit/modal' } : null,
      demoFeed: opts.demo === undefined ? null : { url: DEMO_FEED_PATH, pollMs: opts.demo.pollMs ?? DEMO_FEED_POLL_MS, max: DEMO_FEED_CARDS },
      // <img> cannot send a credential, so images go through the gateway only with its own key.
      imageProxy: !passthrough && app.hasRoute({ method: 'GET', url: '/mj/image/:id' })
    }))
    return page
  }

  app.get('/', async function (_request, reply) {
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(render())
  })

  for (const [name, file] of Object.entries(assets)) {
    // Page links carry ?v=<content hash>, so a cached copy is never out of date.
    app.get(`/dashboard/${name}`, async function (request, reply) {
      return sendAsset(request, reply, file, 'public, max-age=31536000, immutable')
    })
  }

  // Browsers ask for it on every page (GraphiQL and /docs too) and cannot be told a version.
  app.get('/favicon.ico', async function (request, reply) {
    return sendAsset(request, reply, favicon, 'public, max-age=86400')
  })

  const feed = opts.demo
  if (feed !== undefined) {
    // The page asks while it is visible: that is what keeps the simulator starting tasks.
    app.get(DEMO_FEED_PATH, async function (_request, reply) {
      return reply.header('cache-control', 'no-store').send({ ids: feed.recentTaskIds() })
    })
  }
}
