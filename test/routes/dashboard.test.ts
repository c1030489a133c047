import t from 'tap'
import { mkdirSync } from 'node:fs'
import { buildApp } from '../../src/app.js'
import { SEED_TASK_IDS } from '../../src/simulator/index.js'
import { launchBrowser, openPage } from '../helpers/browser.js'
import { startSimulator } from '../helpers/simulator.js'
import { setup } from '../helpers/gateway.js'

const ARTIFACTS = new URL('../artifacts/', import.meta.url)

function pageConfig (html: string): Record<string, any> {
  const match = /<script type="application\/json" id="dashboard-config">([^<]*)<\/script>/.exec(html)
  return JSON.parse(match![1]!)
}

t.test('GET / serves the page, its assets and its settings; no inline script', async (t) => {
  const { app } = await setup(t)
  const page = await app.inject({ url: '/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.notMatch(page.body, /<script(?![^>]*(type="application\/json"|src=))/, 'every script is a file or a JSON data block')
  const config = pageConfig(page.body)
  t.match(config, { demo: false, demoIds: [], stream: '/v1/tasks/stream', submit: null, maxIds: 100 })
  for (const [path, type] of [[/\/dashboard\/dashboard\.js\?v=[\w-]+/, /^text\/javascript/], [/\/dashboard\/dashboard\.css\?v=[\w-]+/, /^text\/css/]] as const) {
    const url = path.exec(page.body)![0]
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, url)
    t.match(res.headers['content-type'], type)
    t.match(res.headers['cache-control'], /immutable/)
  }
})

t.test('demo mode lists the demo tasks and offers the prompt box', async (t) => {
  const { app } = await setup(t, {}, { demoTaskIds: Object.values(SEED_TASK_IDS) })
  const config = pageConfig((await app.inject({ url: '/' })).body)
  t.match(config, { demo: true, demoIds: Object.values(SEED_TASK_IDS), submit: '/mj/submit/imagine', imageProxy: true })
})

t.test('Chromium: demo tasks progress live to SUCCESS with their image; a submitted prompt joins', async (t) => {
  const { sim, url, key } = await startSimulator(t, { durationMs: 8_000 })
  const app = await buildApp({
    upstream: { baseUrl: url, key },
    watch: { intervalMs: 100 },
    cache: { ttlMs: 50 }
  }, { logger: false, demoTaskIds: Object.values(SEED_TASK_IDS) })
  t.teardown(() => app.close())
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })

  const context = await launchBrowser(t)
  const { page, log } = await openPage(context, origin)
  await page.goto(origin + '/')
  const card = (id: string): string => `li.task[data-id="${id}"]`

  // The in-progress seed: seen unfinished first, then SUCCESS with its final image loaded.
  const live = SEED_TASK_IDS.notStart
  await page.waitForSelector(`${card(live)}[data-status="NOT_START"]`)
  const first = await page.getAttribute(card(live), 'data-status')
  // From here simulated time runs 20x faster than real time, so the seeds finish within seconds.
  const pump = setInterval(() => sim.advance(2_000), 100)
  t.teardown(() => clearInterval(pump))
  await page.waitForSelector(`${card(live)}[data-status="IN_PROGRESS"]`, { timeout: 15_000 })
  const midWidth = await page.$eval(`${card(live)} .bar > span`, (el) => (el as HTMLElement).style.width)
  await page.waitForSelector(`${card(live)}[data-status="SUCCESS"]`, { timeout: 20_000 })
  t.pass(`progress went ${first ?? '?'} → IN_PROGRESS (${midWidth}) → SUCCESS`)
  await page.waitForFunction((sel) => {
    const img = document.querySelector(sel) as HTMLImageElement | null
    return img !== null && img.complete && img.naturalWidth > 0 && !img.src.includes('rand=')
  }, `${card(live)} .thumb img`, { timeout: 10_000 })
  t.equal(await page.$eval(`${card(live)} .bar > span`, (el) => (el as HTMLElement).style.width), '100%')
  t.match(await page.$eval(`${card(live)} .thumb img`, (el) => (el as HTMLImageElement).src), new RegExp(`^${origin}/mj/image/${live}$`), 'the image came through the gateway')

  // Final seeds show their final state; the unknown-status ones are labelled.
  t.equal(await page.getAttribute(card(SEED_TASK_IDS.failure), 'data-status'), 'FAILURE')
  t.match(await page.textContent(`${card(SEED_TASK_IDS.failure)} .reason`), /Invalid parameter/)

  // The prompt box (demo only) submits through the gateway and follows the new task.
  const before = await page.$$eval('li.task', (els) => els.length)
  await page.fill('#prompt', 'a paper boat on a rainy street, ink wash')
  await page.click('#submit-form button')
  await page.waitForFunction((n) => document.querySelectorAll('li.task').length === n + 1, before, { timeout: 5_000 })
  const submitted = await page.$eval('li.task:last-child', (el) => (el as HTMLElement).dataset.id!)
  await page.waitForSelector(`${card(submitted)}[data-status="SUCCESS"]`, { timeout: 20_000 })
  await page.waitForFunction((sel) => {
    const img = document.querySelector(sel) as HTMLImageElement | null
    return img !== null && img.complete && img.naturalWidth > 0
  }, `${card(submitted)} .thumb img`, { timeout: 10_000 })
  t.match(new URL(page.url()).searchParams.get('ids'), submitted, 'the submitted id is kept in the address')

  // Only the MODAL seed is left unfinished (MODAL waits for input and is not final), still followed live.
  await page.waitForFunction(() => Array.from(document.querySelectorAll('li.task[data-final="false"]')).every((el) => (el as HTMLElement).dataset.status === 'MODAL'), undefined, { timeout: 20_000 })
  await page.waitForSelector('#conn.live')

  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: new URL('dashboard.png', ARTIFACTS).pathname, fullPage: true })
  t.same(log.foreign, [], 'the page loads nothing from other origins')
  t.same(log.errors, [], 'no script errors or CSP violations')
  t.same(log.failed.filter((f) => !f.includes('/v1/tasks/stream')), [], 'no failed requests')
})
