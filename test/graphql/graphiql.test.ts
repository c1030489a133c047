import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { SEED_TASK_IDS } from '../../src/simulator/index.js'
import { buildApp } from '../../src/app.js'
import { setup } from '../helpers/gateway.js'
import { startSimulator } from '../helpers/simulator.js'
import { launchBrowser, openPage } from '../helpers/browser.js'

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))

// The strictest script policy the page must live with: only same-origin files, no inline code, no eval.
const CSP = "default-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; font-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'"

interface PageConfig { endpoint: string, query: string, variables: string }

t.test('GET /graphiql serves a page whose scripts and styles are all local files', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/graphiql' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html/)
  const srcs = [...res.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)
  t.ok(srcs.length >= 6, 'react, react-dom, graphiql (js + css), bootstrap and page css')
  for (const src of srcs) {
    t.match(src, /^\/graphiql\/assets\/[\w.-]+\?v=[\w.-]+$/, `${src} is served by the gateway`)
    const asset = await app.inject({ url: src })
    t.equal(asset.statusCode, 200, src)
    t.match(asset.headers['content-type'], /^text\/(javascript|css)/)
    t.match(asset.headers['cache-control'], /immutable/)
  }
  t.notMatch(res.body, /<script>|<script(?![^>]*\b(src|type="application\/json"))/, 'no inline executable script')
  t.notMatch(res.body, /unpkg|jsdelivr|cdn/i)

  t.equal((await app.inject({ url: '/graphiql/assets/..%2Fpackage.json' })).statusCode, 404, 'only the listed files are served')
  t.equal((await app.inject({ url: '/graphiql/assets/constructor' })).statusCode, 404)
})

t.test('GraphiQL runs its default query over the demo tasks in headless Chromium', async (t) => {
  t.setTimeout(120_000)
  const { app, upstream } = await setup(t, {}, { demoTaskIds: Object.values(SEED_TASK_IDS) })

  // The page's default ids are whatever the gateway was built with (the simulator's seeds).
  const html = (await app.inject({ url: '/graphiql' })).body
  const config = JSON.parse(/<script type="application\/json" id="graphiql-config">(.*?)<\/script>/s.exec(html)![1]!) as PageConfig
  const ids: string[] = JSON.parse(config.variables).ids
  t.ok(ids.length > 0, `default query asks for ${ids.length} ids`)
  t.equal(config.endpoint, '/graphql')
  const [doneId, ...rest] = ids as [string, ...string[]]
  upstream.add({
    id: doneId,
    status: 'SUCCESS',
    progress: '100%',
    prompt: 'a lighthouse at dawn',
    imageUrl: `https://api.cometapi.com/mj/image/${doneId}`,
    finishTime: 1_700_000_030_000,
    buttons: [
      { customId: 'MJ::JOB::upsample::1::8a7bd4a1', emoji: '', label: 'U1', style: 2, type: 2 },
      { customId: 'MJ::JOB::variation::1::8a7bd4a1', emoji: '', label: 'V1', style: 2, type: 2 }
    ]
  })
  // One id stays unknown upstream, to show a null entry.
  for (const id of rest.slice(0, -1)) upstream.add({ id, status: 'IN_PROGRESS', progress: '31%' })

  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const browser = await launchBrowser(t)
  const { page, log } = await openPage(browser, origin)
  // Serve the page under a strict CSP, as a production deployment may.
  await page.route(`${origin}/graphiql`, async (route) => {
    const response = await route.fetch()
    await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': CSP } })
  })

  await page.goto(`${origin}/graphiql`)
  const execute = page.locator('.graphiql-execute-button')
  await execute.waitFor({ state: 'visible', timeout: 30_000 })
  // The default tab holds our query and variables.
  const editors = await page.evaluate(() => Array.from(document.querySelectorAll('.graphiql-editors .CodeMirror'))
    .map((el) => (el as unknown as { CodeMirror: { getValue (): string } }).CodeMirror.getValue()))
  t.ok(editors.some((text) => text.includes('tasks(ids: $ids)')), 'query editor holds the default query')
  t.ok(editors.some((text) => text.includes(doneId)), 'variables editor holds the default ids')

  await execute.click()
  const resultText = await page.waitForFunction(() => {
    const el = document.querySelector('.result-window .CodeMirror') as unknown as { CodeMirror?: { getValue (): string } } | null
    const text = el?.CodeMirror?.getValue() ?? ''
    return text.includes('"data"') || text.includes('"errors"') ? text : false
  }, undefined, { timeout: 30_000 }).then(async (handle) => await handle.jsonValue() as string)

  const result = JSON.parse(resultText) as { data?: { tasks: Array<Record<string, any> | null> }, errors?: unknown }
  t.equal(result.errors, undefined, 'no GraphQL errors')
  const tasks = result.data!.tasks
  t.same(tasks.map((task) => task?.id ?? null), [...ids.slice(0, -1), null], 'request order, null for the unknown id')
  t.match(tasks[0], {
    id: doneId,
    status: 'SUCCESS',
    progress: '100%',
    progressPercent: 100,
    final: true,
    imageUrl: `https://api.cometapi.com/mj/image/${doneId}`,
    finishTime: 1_700_000_030_000,
    buttons: [{ label: 'U1', customId: 'MJ::JOB::upsample::1::8a7bd4a1' }, { label: 'V1', customId: 'MJ::JOB::variation::1::8a7bd4a1' }]
  })
  if (tasks.length > 2) t.match(tasks[1], { status: 'IN_PROGRESS', progressPercent: 31, final: false })

  // Introspection never reaches upstream; the query is one batched call for all its ids.
  t.equal(upstream.calls.length, 1, 'one list-by-condition call')
  t.same([...upstream.calls[0]!.ids].sort(), [...new Set(ids)].sort(), 'with the ids of the query')

  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: `${ARTIFACTS}graphiql.png` })

  t.same(log.foreign, [], 'no request left the gateway')
  t.same(log.failed, [], 'no request failed')
  t.same(log.errors, [], 'no page errors or CSP violations')
})

t.test('GraphiQL runs the taskUpdates subscription over WebSocket to completion', async (t) => {
  t.setTimeout(120_000)
  const started = await startSimulator(t)
  const app = await buildApp({
    upstream: { baseUrl: started.url, key: started.key },
    cache: { ttlMs: 1 },
    watch: { intervalMs: 50 }
  }, { logger: false })
  t.teardown(() => app.close())
  const id = started.sim.createTask(started.key, { prompt: 'a paper crane on a desk' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const browser = await launchBrowser(t)
  const { page, log } = await openPage(browser, origin)
  await page.goto(`${origin}/graphiql`)
  const execute = page.locator('.graphiql-execute-button')
  await execute.waitFor({ state: 'visible', timeout: 30_000 })
  await page.evaluate((query) => {
    const editor = document.querySelector('.graphiql-query-editor .CodeMirror') as unknown as { CodeMirror: { setValue (text: string): void } }
    editor.CodeMirror.setValue(query)
  }, `subscription { taskUpdates(ids: ["${id}"]) { id status progress final } }`)
  // GraphiQL picks the edit up asynchronously; it is in its stored tab state once it has.
  await page.waitForFunction(() => Object.keys(localStorage).some((key) => localStorage.getItem(key)?.includes('taskUpdates')), undefined, { timeout: 60_000 })

  const resultOf = async (wanted: string): Promise<string> => await page.waitForFunction((needle) => {
    const el = document.querySelector('.result-window .CodeMirror') as unknown as { CodeMirror?: { getValue (): string } } | null
    const text = el?.CodeMirror?.getValue() ?? ''
    return text.includes(needle) ? text : false
  }, wanted, { timeout: 60_000 }).then(async (handle) => await handle.jsonValue() as string)

  await execute.click()
  t.match(JSON.parse(await resultOf('"taskUpdates"')), { data: { taskUpdates: { id, status: 'NOT_START', final: false } } }, 'the current state arrives first')
  started.clock.advance(60_000)
  t.match(JSON.parse(await resultOf('SUCCESS')), { data: { taskUpdates: { id, status: 'SUCCESS', progress: '100%', final: true } } }, 'then the change to SUCCESS')
  t.ok(started.sim.calls.length >= 2, 'the watcher polled upstream for the change')
  t.same(log.foreign, [], 'no request left the gateway')
  t.same(log.errors, [], 'no page errors')
})
