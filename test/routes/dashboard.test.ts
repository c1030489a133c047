import t, { type Test } from 'tap'
import { mkdirSync } from 'node:fs'
import type { Page, Request } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import type { DemoDeps } from '../../src/plugins/gateway.js'
import { SEED_TASK_IDS, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js'
import { launchBrowser, openPage, type PageLog } from '../helpers/browser.js'
import { startSimulator } from '../helpers/simulator.js'
import { setup } from '../helpers/gateway.js'

const ARTIFACTS = new URL('../artifacts/', import.meta.url)
const SEEDS: readonly string[] = Object.values(SEED_TASK_IDS)
const card = (id: string): string => `li.task[data-id="${id}"]`

function pageConfig (html: string): Record<string, any> {
  const match = /<script type="application\/json" id="dashboard-config">([^<]*)<\/script>/.exec(html)
  return JSON.parse(match![1]!)
}

interface LiveDemo {
  sim: Simulator
  app: FastifyInstance
  origin: string
  /** Runs simulated time 20x faster than real time until the test ends, so tasks finish within seconds. */
  pump: () => void
}

/** A demo-mode gateway on a simulator with a manual clock, listening on 127.0.0.1. */
async function liveDemo (t: Test, sim: SimulatorOptions = {}, demo?: (sim: Simulator) => DemoDeps): Promise<LiveDemo> {
  const started = await startSimulator(t, { durationMs: 8_000, ...sim })
  const app = await buildApp({
    upstream: { baseUrl: started.url, key: started.key },
    watch: { intervalMs: 100 },
    cache: { ttlMs: 50 }
  }, { logger: false, demoTaskIds: SEEDS, ...(demo === undefined ? {} : { demo: demo(started.sim) }) })
  t.teardown(() => app.close())
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  let timer: NodeJS.Timeout | undefined
  t.teardown(() => clearInterval(timer))
  return { sim: started.sim, app, origin, pump: () => { timer ??= setInterval(() => started.sim.advance(2_000), 100) } }
}

/** The Idempotency-Key of every submit the page sends to `path`, in order. */
function submitKeys (page: Page, path: string): string[] {
  const keys: string[] = []
  page.on('request', (req: Request) => {
    if (req.method() === 'POST' && new URL(req.url()).pathname === path) keys.push(req.headers()['idempotency-key'] ?? '(none)')
  })
  return keys
}

/** Waits until a task the page did not show before is first in the grid, and returns its id. */
async function newFirstCard (page: Page, known: ReadonlySet<string>): Promise<string> {
  const handle = await page.waitForFunction((ids) => {
    const first = document.querySelector('li.task') as HTMLElement | null
    return first !== null && !ids.includes(first.dataset.id!) ? first.dataset.id! : false
  }, [...known], { timeout: 10_000 })
  return await handle.jsonValue() as string
}

async function shownIds (page: Page): Promise<string[]> {
  return await page.$$eval('li.task', (els) => els.map((el) => (el as HTMLElement).dataset.id!))
}

/** No foreign loads, script errors or failed requests, but for the stream's reconnects and what the test caused (`expected`). */
function noTrouble (t: Test, log: PageLog, expected?: RegExp): void {
  const unexpected = (line: string): boolean => expected === undefined || !expected.test(line)
  t.strictSame(log.foreign, [], 'the page loads nothing from other origins')
  t.strictSame(log.errors.filter(unexpected), [], 'no script errors or CSP violations')
  t.strictSame(log.failed.filter((line) => !line.includes('/v1/tasks/stream') && unexpected(line)), [], 'no failed requests')
}

t.test('GET / serves the page, its versioned assets and its settings; no inline script', async (t) => {
  const { app } = await setup(t)
  const page = await app.inject({ url: '/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.notMatch(page.body, /<script(?![^>]*(type="application\/json"|src=))/, 'every script is a file or a JSON data block')
  t.notMatch(page.body, /__VERSION__|__CONFIG__/)
  const config = pageConfig(page.body)
  t.strictSame({ demo: config.demo, demoIds: config.demoIds, submit: config.submit, demoFeed: config.demoFeed }, { demo: false, demoIds: [], submit: null, demoFeed: null })
  t.equal(config.stream, '/v1/tasks/stream')
  t.equal(config.maxIds, 100)
  const assets: Array<[string, RegExp]> = [['dashboard.js', /^text\/javascript/], ['actions.js', /^text\/javascript/], ['dashboard.css', /^text\/css/], ['favicon.svg', /^image\/svg\+xml/]]
  for (const [name, type] of assets) {
    const url = new RegExp(`/dashboard/${name.replace('.', '\\.')}\\?v=[\\w-]{12}`).exec(page.body)![0]
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, url)
    t.match(res.headers['content-type'], type)
    t.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable')
    const again = await app.inject({ url, headers: { 'if-none-match': String(res.headers.etag) } })
    t.equal(again.statusCode, 304, `${name}: a cached copy is confirmed, not sent again`)
    t.equal(again.body, '')
  }
})

t.test('/favicon.ico is an icon with caching headers, not a JSON 404', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/favicon.ico' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'image/x-icon')
  t.equal(res.headers['cache-control'], 'public, max-age=86400')
  const ico = res.rawPayload
  t.strictSame([...ico.subarray(0, 4)], [0, 0, 1, 0], 'an ICO header')
  const sizes = Array.from({ length: ico.readUInt16LE(4) }, (_v, i) => ico[6 + 16 * i])
  t.strictSame(sizes, [16, 32, 48])
  const cached = await app.inject({ url: '/favicon.ico', headers: { 'if-none-match': String(res.headers.etag) } })
  t.equal(cached.statusCode, 304)
})

t.test('demo mode offers the prompt box, the task buttons and the keep-alive tasks', async (t) => {
  let asked = 0
  const { app } = await setup(t, {}, { demoTaskIds: SEEDS, demo: { imageBase: 'http://127.0.0.1:9', recentTaskIds: () => { asked++; return ['1750000000000001'] } } })
  const config = pageConfig((await app.inject({ url: '/' })).body)
  t.strictSame(config.demoIds, SEEDS)
  t.strictSame(config.submit, { imagine: '/mj/submit/imagine', action: '/mj/submit/action', modal: '/mj/submit/modal' })
  t.strictSame(config.demoFeed, { url: '/dashboard/demo-tasks', pollMs: 5_000, max: 6 })
  t.equal(config.imageProxy, true)
  t.equal(asked, 0, 'rendering the page starts nothing')
  const feed = await app.inject({ url: '/dashboard/demo-tasks' })
  t.strictSame(feed.json(), { ids: ['1750000000000001'] })
  t.equal(asked, 1)
  t.equal((await setup(t)).app.hasRoute({ method: 'GET', url: '/dashboard/demo-tasks' }), false, 'only in demo mode')
})

const context = launchBrowser(t)

t.test('Chromium: demo tasks progress live to SUCCESS with their image; a submitted prompt joins first, with an Idempotency-Key', async (t) => {
  const { sim, origin, pump } = await liveDemo(t)
  const { page, log } = await openPage(await context, origin)
  const keys = submitKeys(page, '/mj/submit/imagine')
  await page.goto(origin + '/')
  t.strictSame(await shownIds(page), SEEDS, 'the demo tasks, in order')

  // The in-progress seed: seen unfinished first, then SUCCESS with its final image loaded.
  const live = SEED_TASK_IDS.notStart
  await page.waitForSelector(`${card(live)}[data-status="NOT_START"]`)
  pump()
  await page.waitForSelector(`${card(live)}[data-status="IN_PROGRESS"]`, { timeout: 15_000 })
  const midWidth = await page.$eval(`${card(live)} .bar > span`, (el) => (el as HTMLElement).style.width)
  await page.waitForSelector(`${card(live)}[data-status="SUCCESS"]`, { timeout: 20_000 })
  t.pass(`progress went NOT_START → IN_PROGRESS (${midWidth}) → SUCCESS`)
  await page.waitForFunction((sel) => {
    const img = document.querySelector(sel) as HTMLImageElement | null
    return img !== null && img.complete && img.naturalWidth > 0 && !img.src.includes('rand=')
  }, `${card(live)} .thumb img`, { timeout: 10_000 })
  t.equal(await page.$eval(`${card(live)} .bar > span`, (el) => (el as HTMLElement).style.width), '100%')
  t.equal(await page.$eval(`${card(live)} .thumb img`, (el) => (el as HTMLImageElement).src), `${origin}/mj/image/${live}`, 'the image came through the gateway')
  t.equal(await page.getAttribute(card(SEED_TASK_IDS.failure), 'data-status'), 'FAILURE')
  t.match(await page.textContent(`${card(SEED_TASK_IDS.failure)} .reason`), /Invalid parameter/)

  // The prompt box (demo only) submits through the gateway; the new task goes first and is followed.
  await page.fill('#prompt', 'a paper boat on a rainy street, ink wash')
  await page.click('#submit-form button')
  const submitted = await newFirstCard(page, new Set(SEEDS))
  t.equal(sim.allCalls.filter((c) => c.route === 'imagine').length, 1, 'one submit upstream')
  t.equal(keys.length, 1)
  t.match(keys[0], /^[0-9a-f]{32}$/, 'sent with a random Idempotency-Key')
  t.equal(await page.inputValue('#prompt'), '', 'the box is cleared once the task exists')
  await page.waitForSelector(`${card(submitted)}[data-status="SUCCESS"]`, { timeout: 20_000 })
  t.equal(new URL(page.url()).searchParams.get('ids'), submitted, 'the submitted id is kept in the address')

  // Only the MODAL seed is left unfinished (MODAL waits for input and is not final), still followed live.
  await page.waitForFunction(() => Array.from(document.querySelectorAll('li.task[data-final="false"]')).every((el) => (el as HTMLElement).dataset.status === 'MODAL'), undefined, { timeout: 20_000 })
  await page.waitForFunction(() => document.querySelector('#conn')!.textContent === 'live · 1 watched', undefined, { timeout: 5_000 })
  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: new URL('dashboard.png', ARTIFACTS).pathname, fullPage: true })
  noTrouble(t, log)
})

t.test('Chromium: ?ids= shows just the ids asked for, and an unknown one stops counting as watched', async (t) => {
  let feedAsked = 0
  const { origin } = await liveDemo(t, {}, (sim) => ({ imageBase: sim.url!, recentTaskIds: () => { feedAsked++; return [] }, pollMs: 50 }))
  const { page, log } = await openPage(await context, origin)
  // The clock stands still: the NOT_START seed stays unfinished, and nope123 is reported unknown after the watcher's grace.
  await page.goto(`${origin}/?ids=nope123,${SEED_TASK_IDS.notStart}`)
  await page.waitForSelector(`${card(SEED_TASK_IDS.notStart)}[data-status="NOT_START"]`)
  t.strictSame(await shownIds(page), ['nope123', SEED_TASK_IDS.notStart], 'no demo tasks beside them')
  await page.waitForFunction(() => document.querySelector('#conn')!.textContent === 'live · 2 watched', undefined, { timeout: 5_000 })
  await page.waitForSelector(`${card('nope123')}[data-status="UNKNOWN"]`, { timeout: 30_000 })
  t.equal(await page.textContent(`${card('nope123')} .thumb`), 'not found')
  await page.waitForFunction(() => document.querySelector('#conn')!.textContent === 'live · 1 watched', undefined, { timeout: 5_000 })
  t.pass('the count dropped to the one id still watched')
  t.strictSame(await shownIds(page), ['nope123', SEED_TASK_IDS.notStart])
  t.equal(feedAsked, 0, 'the demo feed is not followed when ids were asked for')
  noTrouble(t, log)
})

t.test('Chromium: a task button submits the action once, even on a double click or a retry, and the new task is followed to SUCCESS at the top', async (t) => {
  const { sim, origin, pump } = await liveDemo(t)
  const { page, log } = await openPage(await context, origin)
  const keys = submitKeys(page, '/mj/submit/action')
  await page.goto(origin + '/')
  const parent = card(SEED_TASK_IDS.success)
  const buttons = page.locator(`${parent} .actions button`)
  await buttons.first().waitFor()
  t.strictSame(await buttons.evaluateAll((els) => els.map((el) => el.getAttribute('aria-label') ?? el.textContent)),
    ['U1', 'U2', 'U3', 'U4', 'Reroll', 'V1', 'V2', 'V3', 'V4'], 'every button of the task, each with a name')
  const actionsOn = (id: string): number => sim.allCalls.filter((c) => c.route === 'action' && c.taskId === id).length
  const known = new Set(SEEDS)

  await page.locator(parent).getByRole('button', { name: 'U2', exact: true }).click()
  const upscale = await newFirstCard(page, known)
  known.add(upscale)
  t.equal(actionsOn(SEED_TASK_IDS.success), 1, 'one submit upstream')
  t.match(keys[0], /^[0-9a-f]{32}$/, 'with an Idempotency-Key')
  t.match(await page.textContent('#info'), new RegExp(`U2 on ${SEED_TASK_IDS.success}: started task ${upscale}`))

  await page.locator(parent).getByRole('button', { name: 'V1', exact: true }).dblclick()
  const variation = await newFirstCard(page, known)
  known.add(variation)
  t.equal(actionsOn(SEED_TASK_IDS.success), 2, 'a double click submits once')
  t.equal(keys.length, 2)

  // A network blip on the first try: the page retries with the same key, and the gateway sees one submit.
  let dropped = false
  await page.route('**/mj/submit/action', async (route) => {
    if (dropped) return await route.fallback()
    dropped = true
    return await route.abort('connectionreset')
  })
  await page.locator(parent).getByRole('button', { name: 'Reroll', exact: true }).click()
  const reroll = await newFirstCard(page, known)
  known.add(reroll)
  t.equal(keys.length, 4, 'sent twice')
  t.equal(keys[3], keys[2], 'the retry reuses the key of its click')
  t.not(keys[2], keys[1], 'a new click has a new key')
  t.equal(actionsOn(SEED_TASK_IDS.success), 3, 'one submit upstream for the retried click')
  t.strictSame((await shownIds(page)).slice(0, 3), [reroll, variation, upscale], 'newest first')

  pump()
  for (const id of [upscale, variation, reroll]) await page.waitForSelector(`${card(id)}[data-status="SUCCESS"]`, { timeout: 20_000 })
  t.equal(await page.textContent(`${card(upscale)} .action`), 'UPSCALE')
  t.equal(await page.locator(`${card(upscale)} .actions button`).count(), 12, 'the upscale has buttons of its own')
  t.equal(await page.locator(card(upscale)).getByRole('button', { name: 'Pan left', exact: true }).textContent(), '⬅️')
  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: new URL('dashboard-actions.png', ARTIFACTS).pathname })
  // The blip made on purpose: one reset request, and the console line Chromium writes for it.
  t.equal(log.failed.filter((line) => /^POST .*\/mj\/submit\/action: net::ERR_CONNECTION_RESET$/.test(line)).length, 1)
  noTrouble(t, log, /ERR_CONNECTION_RESET/)
})

t.test('Chromium: a MODAL card takes the prompt that modal submits, with an Idempotency-Key', async (t) => {
  const { sim, origin, pump } = await liveDemo(t)
  const { page, log } = await openPage(await context, origin)
  const keys = submitKeys(page, '/mj/submit/modal')
  await page.goto(origin + '/')
  const modal = page.locator(card(SEED_TASK_IDS.modal))
  const prompt = modal.getByRole('textbox', { name: 'Prompt for CUSTOM_ZOOM' })
  await prompt.waitFor()
  t.equal(await prompt.inputValue(), 'a lighthouse on a cliff at dawn, watercolor --ar 1:1', 'prefilled with the task\'s prompt')
  t.equal(await page.locator(`${card(SEED_TASK_IDS.failure)} form.modal, ${card(SEED_TASK_IDS.failure)} .actions button`).count(), 0, 'a FAILURE offers nothing')
  await prompt.fill('a lighthouse on a cliff at dawn, watercolor --zoom 2')
  await modal.getByRole('button', { name: 'Submit' }).click()
  const zoomed = await newFirstCard(page, new Set(SEEDS))
  t.strictSame(sim.allCalls.filter((c) => c.route === 'modal').map((c) => c.taskId), [SEED_TASK_IDS.modal], 'one modal submit upstream')
  t.match(keys, [/^[0-9a-f]{32}$/])
  pump()
  await page.waitForSelector(`${card(zoomed)}[data-status="SUCCESS"]`, { timeout: 20_000 })
  t.equal(await page.textContent(`${card(zoomed)} .prompt`), 'a lighthouse on a cliff at dawn, watercolor --zoom 2')
  noTrouble(t, log)
})

t.test('Chromium: the demo keeps moving; tasks the simulator starts join at the top and old ones leave', async (t) => {
  const { origin, pump } = await liveDemo(t, { keepAlive: { everyMs: 15_000, keep: 4 } }, (sim) => ({
    imageBase: sim.url!,
    recentTaskIds: () => sim.keepAliveIds(),
    pollMs: 100
  }))
  const { page, log } = await openPage(await context, origin)
  await page.goto(origin + '/')
  await page.waitForSelector(`${card(SEED_TASK_IDS.notStart)}[data-status="NOT_START"]`)
  pump()
  const first = await newFirstCard(page, new Set(SEEDS))
  await page.waitForSelector(`${card(first)}[data-status="SUCCESS"]`, { timeout: 20_000 })
  // Well past the live seeds' end: the page still gains tasks that move.
  const seen = new Set<string>([first])
  while (seen.size < 9) {
    seen.add(await newFirstCard(page, new Set([...SEEDS, ...seen])))
  }
  const ids = await shownIds(page)
  const fed = ids.filter((id) => !SEEDS.includes(id))
  t.ok(fed.length <= 6, `at most six of them stay on the page (${fed.length})`)
  t.strictSame(ids.slice(fed.length), SEEDS, 'above the demo tasks')
  t.strictSame(fed, [...fed].sort().reverse(), 'newest first')
  noTrouble(t, log)
})
