import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import sparticuz from '@sparticuz/chromium'
import { chromium, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core'

/** What a page did that a test may want to assert on. */
export interface PageLog {
  /** Requests to any origin but the gateway's: none are expected, the pages work offline. */
  readonly foreign: string[]
  /** Requests that failed or answered 4xx/5xx. */
  readonly failed: string[]
  /** Uncaught exceptions and console errors (CSP violations land here). */
  readonly errors: string[]
}

/** The browser to launch, its flags and what it needs in its environment. */
export interface Executable { readonly path: string, readonly args: string[], readonly env: Record<string, string> }

/**
 * Flags of `@sparticuz/chromium`'s `args` that are not kept: they are meant
 * for Lambda and would change what the tests check (same-origin policy, site
 * isolation, mixed content) or how the browser runs (`--single-process`,
 * Playwright's own `--headless`). Its other flags stay. WebGL is off (no page
 * uses it): `--disable-webgl` instead of SwiftShader's flags.
 */
const DROPPED_ARGS = [
  /^--single-process$/,
  /^--disable-web-security$/,
  /^--allow-running-insecure-content$/,
  /^--disable-site-isolation-trials$/,
  /^--(?:disable|enable)-features=/,
  /^--headless\b/
]

/**
 * Flags every launch gets: no sandbox (the tests run as root), no GPU, and on
 * this closed network nothing that tries to reach Google's hosts.
 */
const OWN_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

/**
 * The headless Chromium that `@sparticuz/chromium` ships brotli-compressed in
 * the npm package (pinned by the lockfile), inflated once per package version
 * into its own folder under the temp dir, without network. The package would
 * inflate into the temp dir itself and reuse any `chromium` it finds there,
 * whatever its version, and parallel test files would race on the same file
 * (ETXTBSY); so it inflates into a fresh folder here, renamed into place
 * whole. Its fonts (Open Sans) are the only ones the browser sees, so pages
 * render alike whatever fonts the machine has.
 */
async function bundledChromium (): Promise<Executable> {
  const pkg = join(dirname(fileURLToPath(import.meta.resolve('@sparticuz/chromium'))), '..', '..', 'package.json')
  const { version } = JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }
  const dir = join(tmpdir(), `mj-gateway-sparticuz-chromium-${version}`)
  sparticuz.setGraphicsMode = false
  const args = [...new Set([...sparticuz.args.filter((arg) => !DROPPED_ARGS.some((re) => re.test(arg))), ...OWN_ARGS])]
  const executable: Executable = { path: join(dir, 'chromium'), args, env: { FONTCONFIG_PATH: join(dir, 'fonts') } }
  if (existsSync(executable.path)) return executable

  const staging = mkdtempSync(join(tmpdir(), 'mj-gateway-sparticuz-chromium-staging-'))
  try {
    // executablePath() inflates into os.tmpdir(), read synchronously before its first await.
    const tmp = process.env.TMPDIR
    process.env.TMPDIR = staging
    let inflating: Promise<string>
    try {
      inflating = sparticuz.executablePath()
    } finally {
      if (tmp === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = tmp
    }
    const inflated = await inflating
    if (inflated !== join(staging, 'chromium')) throw new Error(`@sparticuz/chromium inflated into ${inflated}, not ${staging}`)
    writeFileSync(join(staging, 'fonts', 'fonts.conf'), [
      '<?xml version="1.0"?>',
      '<!DOCTYPE fontconfig SYSTEM "fonts.dtd">',
      '<fontconfig>',
      `  <dir>${join(dir, 'fonts', 'fonts')}</dir>`,
      `  <cachedir>${join(dir, 'fonts-cache')}</cachedir>`,
      '</fontconfig>',
      ''
    ].join('\n'))
    try {
      renameSync(staging, dir)
    } catch (err) {
      // Another test file inflated it first.
      if (!existsSync(executable.path)) throw err
    }
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
  return executable
}

let executable: Promise<Executable> | undefined

/**
 * The browser the tests launch: `CHROMIUM_PATH` if set, else the one
 * `@sparticuz/chromium` ships. A missing binary is a failure, never a skip.
 */
export async function chromiumExecutable (): Promise<Executable> {
  const path = process.env.CHROMIUM_PATH
  if (path !== undefined && path !== '') return { path, args: OWN_ARGS, env: {} }
  executable ??= bundledChromium()
  return await executable
}

/**
 * Headless Chromium with a fresh profile, closed (and its profile deleted)
 * with the test. Playwright takes the profile as `userDataDir` (it refuses a
 * `--user-data-dir` argument) and adds `--headless` itself.
 */
export async function launchBrowser (t: { teardown: (fn: () => unknown) => void }, viewport = { width: 1440, height: 900 }): Promise<BrowserContext> {
  const { path, args, env } = await chromiumExecutable()
  const profile = mkdtempSync(join(tmpdir(), 'mj-gateway-chromium-'))
  let context: BrowserContext
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: path,
      env: { ...process.env, ...env },
      headless: true,
      viewport,
      args
    })
  } catch (err) {
    rmSync(profile, { recursive: true, force: true })
    throw err
  }
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
