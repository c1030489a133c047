import { createReadStream, readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import { assetVersion, jsonForHtml } from '../http/html.js'

export interface GraphiqlOptions {
  /** Task ids the page's default query asks for (e.g. the simulator's seeded demo tasks). */
  defaultIds?: readonly string[]
  /** The GraphQL endpoint the page talks to; its ws:// twin is the subscription URL. */
  endpoint?: string
}

export const GRAPHIQL_PATH = '/graphiql'
export const GRAPHIQL_ASSETS = '/graphiql/assets'

const DEFAULT_QUERY = `# Tasks are read through the gateway's batcher and cache.
# Press Ctrl-Enter (or the run button) to execute.
query Tasks($ids: [ID!]!) {
  tasks(ids: $ids) {
    id
    action
    status
    progress
    progressPercent
    final
    imageUrl
    failReason
    finishTime
    buttons {
      label
      customId
    }
  }
}
`

// Bootstrap in a served file, not inline, so a strict `script-src 'self'` CSP
// needs no hash or nonce. Its settings come from a JSON data block (never executed).
const BOOT_JS = `(function () {
  'use strict'
  var config = JSON.parse(document.getElementById('graphiql-config').textContent)
  var endpoint = new URL(config.endpoint, window.location.href)
  var ws = new URL(endpoint.href)
  ws.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:'
  var fetcher = GraphiQL.createFetcher({ url: endpoint.href, subscriptionUrl: ws.href })
  var root = ReactDOM.createRoot(document.getElementById('graphiql'))
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    // query + variables (not defaultTabs, whose variables GraphiQL 3 leaves out of the
    // editor): a fresh visit opens this tab; a later one re-activates it beside stored tabs.
    query: config.query,
    variables: config.variables,
    defaultEditorToolsVisibility: 'variables'
  }))
})()
`

const PAGE_CSS = `html, body { height: 100%; margin: 0; }
#graphiql { height: 100vh; }
`

interface Asset {
  readonly type: string
  /** Cache-busting token in the page's asset URLs: package version or content hash. */
  readonly version: string
  readonly file?: string
  readonly body?: string
}

const require = createRequire(import.meta.url)

/**
 * A file inside an installed package. Resolved through package.json because
 * react's `exports` map hides its umd/ folder from `require.resolve`.
 */
function packageFile (pkg: string, file: string, type: string): Asset {
  const manifest = require.resolve(`${pkg}/package.json`)
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }
  const path = join(dirname(manifest), file)
  statSync(path) // fail at start-up, not on the first page view, when a package lacks the file
  return { type, version, file: path }
}

function inline (body: string, type: string): Asset {
  return { type, body, version: assetVersion(body) }
}

function page (assets: Record<string, Asset>, config: unknown): string {
  const url = (name: string): string => `${GRAPHIQL_ASSETS}/${name}?v=${assets[name]!.version}`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL · Midjourney task gateway</title>
<link rel="stylesheet" href="${url('graphiql.min.css')}">
<link rel="stylesheet" href="${url('page.css')}">
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript. The API itself is at POST /graphql.</noscript>
<script type="application/json" id="graphiql-config">${jsonForHtml(config)}</script>
<script src="${url('react.production.min.js')}"></script>
<script src="${url('react-dom.production.min.js')}"></script>
<script src="${url('graphiql.min.js')}"></script>
<script src="${url('boot.js')}"></script>
</body>
</html>
`
}

/**
 * GraphiQL at GET /graphiql with React and GraphiQL served from node_modules
 * by the gateway itself, so the page works offline (mercurius' own GraphiQL
 * loads them from unpkg). Not wrapped in fastify-plugin: it adds routes only.
 */
export const graphiql: FastifyPluginAsync<GraphiqlOptions> = async function graphiql (app, opts) {
  const js = 'text/javascript; charset=utf-8'
  const css = 'text/css; charset=utf-8'
  const assets: Record<string, Asset> = {
    'react.production.min.js': packageFile('react', 'umd/react.production.min.js', js),
    'react-dom.production.min.js': packageFile('react-dom', 'umd/react-dom.production.min.js', js),
    'graphiql.min.js': packageFile('graphiql', 'graphiql.min.js', js),
    'graphiql.min.css': packageFile('graphiql', 'graphiql.min.css', css),
    'boot.js': inline(BOOT_JS, js),
    'page.css': inline(PAGE_CSS, css)
  }
  const config = {
    endpoint: opts.endpoint ?? '/graphql',
    query: DEFAULT_QUERY,
    variables: JSON.stringify({ ids: [...(opts.defaultIds ?? [])] }, null, 2)
  }
  const html = page(assets, config)

  app.get(GRAPHIQL_PATH, async function (request, reply) {
    // no-cache: the page names the current asset versions.
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html)
  })

  app.get<{ Params: { name: string } }>(`${GRAPHIQL_ASSETS}/:name`, async function (request, reply) {
    // Only the files listed above: the name never reaches the file system.
    const asset = Object.hasOwn(assets, request.params.name) ? assets[request.params.name] : undefined
    if (asset === undefined) return reply.callNotFound()
    // Page URLs carry ?v=<version>, so a new version is a new URL and old ones never change.
    reply.type(asset.type)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .header('x-content-type-options', 'nosniff')
    if (asset.body !== undefined) return reply.send(asset.body)
    return reply.header('content-length', statSync(asset.file!).size).send(createReadStream(asset.file!))
  })
}
