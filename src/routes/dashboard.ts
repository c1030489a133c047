import { readFileSync } from 'node:fs'
import { assetVersion, jsonForHtml } from '../http/html.js'
import type { FastifyInstance } from 'fastify'
import { STREAM_PATH } from './stream.js'

export interface DashboardOptions {
  /** Demo mode: the simulator's seeded ids, listed at once, and the prompt box is shown. */
  demoTaskIds?: readonly string[]
}

// Resolved from the repository root, so the same path works from src/ (tsx) and dist/ (built).
const DIR = new URL('../../src/dashboard/', import.meta.url)

interface Asset {
  readonly body: Buffer
  readonly type: string
  readonly version: string
}

function asset (file: string, type: string): Asset {
  const body = readFileSync(new URL(file, DIR))
  return { body, type, version: assetVersion(body) }
}

/**
 * `GET /`: a small live dashboard (plain HTML, CSS and JS, no framework, no
 * inline script) that follows tasks over the SSE stream. In demo mode it lists
 * the demo tasks and offers a prompt box posting to `/mj/submit/imagine`.
 */
export default async function dashboardRoutes (app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const { config } = app.gateway
  const css = asset('dashboard.css', 'text/css; charset=utf-8')
  const js = asset('dashboard.js', 'text/javascript; charset=utf-8')
  const template = readFileSync(new URL('index.html', DIR), 'utf8')
    .replace('__CSS_VERSION__', css.version)
    .replace('__JS_VERSION__', js.version)
  const demo = opts.demoTaskIds !== undefined
  const passthrough = config.upstream.auth === 'passthrough'
  let page: string | undefined

  // Built on first request: by then every route is registered, so hasRoute sees the pass-through ones.
  function render (): string {
    page ??= template.replace('__CONFIG__', jsonForHtml({
      demo,
      passthrough,
      demoIds: opts.demoTaskIds ?? [],
      stream: STREAM_PATH,
      maxIds: config.watch.maxIdsPerConnection,
      submit: demo && app.hasRoute({ method: 'POST', url: '/mj/submit/:action' }) ? '/mj/submit/imagine' : null,
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

  for (const [name, file] of [['dashboard.css', css], ['dashboard.js', js]] as const) {
    app.get(`/dashboard/${name}`, async function (_request, reply) {
      // Page links carry ?v=<content hash>, so a cached copy is never out of date.
      return reply
        .type(file.type)
        .header('cache-control', 'public, max-age=31536000, immutable')
        .header('etag', `"${file.version}"`)
        .send(file.body)
    })
  }
}
