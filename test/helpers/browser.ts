import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core'

/** Debian's chromium; CI installs it, so a missing binary is a failure, never a skip. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** What a page did that a test may want to assert on. */
export interface PageLog {
  /** Requests to any origin but the gateway's: none are expected, the pages work offline. */
  readonly foreign: string[]
  /** Requests that failed or answered 4xx/5xx. */
  readonly failed: string[]
  /** Uncaught exceptions and console errors (CSP violations land here). */
  readonly errors: string[]
}

/**
 * Headless Chromium with a fresh profile, closed (and its profile deleted)
 * with the test. Playwright takes the profile as `userDataDir` (it refuses a
 * `--user-data-dir` argument) and adds `--headless` itself.
 */
export async function launchBrowser (t: { teardown: (fn: () => unknown) => void }, viewport = { width: 1440, height: 900 }): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'mj-gateway-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    viewport,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync'
    ]
  })
  t.teardown(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  return context
}

/**
 * A new page whose requests outside `origin` are aborted and logged, and
 * whose failures and console errors are collected.
 */
export async function openPage (context: BrowserContext, origin: string): Promise<{ page: Page, log: PageLog }> {
  const page = await context.newPage()
  const log: PageLog = { foreign: [], failed: [], errors: [] }
  await page.route('**/*', async (route) => {
    const url = route.request().url()
    if (url.startsWith(origin + '/') || url === origin) return await route.continue()
    log.foreign.push(url)
    return await route.abort('blockedbyclient')
  })
  page.on('pageerror', (err) => log.errors.push(`pageerror: ${err.message}`))
  page.on('console', (msg: ConsoleMessage) => { if (msg.type() === 'error') log.errors.push(`console: ${msg.text()}`) })
  page.on('requestfailed', (req) => log.failed.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText ?? 'failed'}`))
  page.on('response', (res) => { if (res.status() >= 400) log.failed.push(`${res.request().method()} ${res.url()}: HTTP ${res.status()}`) })
  return { page, log }
}
