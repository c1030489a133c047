import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { FakeUpstream } from '../helpers/fake-upstream.js'
import { freePort } from '../helpers/server.js'
import { NODE_FLAGS } from '../../src/process-tuning.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Instruction { keyword: string, args: string }
interface Stage { image: string, name: string | undefined, instructions: Instruction[] }

/** Stages of a Dockerfile: continuation lines joined, comments and parser directives dropped. */
function parseDockerfile (text: string): Stage[] {
  const stages: Stage[] = []
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/)
  for (const line of lines.map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    if (keyword.toUpperCase() === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/)
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
      continue
    }
    stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args })
  }
  return stages
}

function all (stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args)
}

/** `COPY [--from=x] src... dest` in shell or JSON form. */
function parseCopy (args: string): { from: string | undefined, sources: string[], dest: string } {
  let from: string | undefined
  const words = args.split(/\s+/).filter((w) => {
    if (!w.startsWith('--')) return true
    if (w.startsWith('--from=')) from = w.slice('--from='.length)
    return false
  })
  const rest = words.join(' ')
  const paths = rest.startsWith('[') ? JSON.parse(rest) as string[] : words
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! }
}

/** `ENV a=b c=d` (the form the Dockerfile uses) as an object. */
function parseEnv (args: string[]): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of args) for (const [, k, v] of line.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[k!] = v!.replace(/^"|"$/g, '')
  return env
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
const stages = parseDockerfile(dockerfile)
const build = stages.find((s) => s.name === 'build')
const runtime = stages.at(-1)!

t.test('the Dockerfile has a build stage and a lean, non-root runtime stage', async (t) => {
  t.equal(stages.length, 2)
  t.ok(build, 'a stage named build')
  t.match(build!.image, /^node:22(-bookworm)?-slim$/)
  t.same(all(build!, 'RUN').map((r) => r.split(/\s+/).slice(0, 3).join(' ')), ['npm ci --no-audit', 'npm run build'])

  t.equal(runtime.image, 'node:22-slim')
  const runs = all(runtime, 'RUN').join(' && ')
  t.match(runs, /npm ci --omit=dev/, 'production dependencies only')
  t.notMatch(runs, /npm run build|tsc/, 'nothing is compiled in the runtime stage')
  t.same(all(runtime, 'USER'), ['node'], 'runs as the unprivileged node user')
  t.same(all(runtime, 'EXPOSE'), ['3000'])
  t.match(parseEnv(all(runtime, 'ENV')), { NODE_ENV: 'production', HOST: '0.0.0.0', PORT: '3000' })
  t.strictSame(JSON.parse(all(runtime, 'CMD')[0]!), ['node', ...NODE_FLAGS, 'dist/server.js'], 'started as npm start starts it')
  const healthcheck = all(runtime, 'HEALTHCHECK')[0] ?? ''
  t.match(healthcheck, /CMD \["node", "-e", ".*\/healthz/, 'HEALTHCHECK with node, not curl')
  const copies = all(runtime, 'COPY').map(parseCopy)
  t.ok(copies.some((c) => c.from === 'build' && c.sources.includes('/app/dist')), 'dist/ comes from the build stage')

  // Whatever the image copies from the context must not be excluded by .dockerignore.
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  for (const entry of ['node_modules', 'dist', '.git', 'test/artifacts', '.tap']) t.ok(ignored.includes(entry), `.dockerignore has ${entry}`)
  for (const stage of stages) {
    for (const copy of all(stage, 'COPY').map(parseCopy).filter((c) => c.from === undefined)) {
      for (const source of copy.sources) {
        t.notOk(ignored.includes(source.replace(/\/$/, '')), `${source} is in the build context`)
        t.ok(existsSync(join(ROOT, source)), `${source} exists`)
      }
    }
  }
})

t.test('the runtime stage, replayed outside Docker, serves requests and stops cleanly', async (t) => {
  t.setTimeout(180_000)
  const tmp = mkdtempSync(join(tmpdir(), 'mj-gateway-image-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
  const buildDir = join(tmp, 'build')
  const appDir = join(tmp, 'app')
  const buildWorkdir = all(build!, 'WORKDIR').at(-1)!
  const workdir = all(runtime, 'WORKDIR').at(-1)!

  // Build stage: its COPY lines into a clean folder, the repo's node_modules standing in for `npm ci`.
  for (const { sources, dest } of all(build!, 'COPY').map(parseCopy)) {
    for (const source of sources) cpSync(join(ROOT, source), join(buildDir, dest, dest.endsWith('/') ? posix.basename(source) : ''), { recursive: true })
  }
  symlinkSync(join(ROOT, 'node_modules'), join(buildDir, 'node_modules'), 'dir')
  await run('npm', ['run', 'build'], { cwd: buildDir })
  t.ok(existsSync(join(buildDir, 'dist/server.js')), 'the build stage compiles dist/server.js')

  // Runtime stage: exactly what its COPY lines bring in, then production dependencies only.
  for (const { from, sources, dest } of all(runtime, 'COPY').map(parseCopy)) {
    for (const source of sources) {
      const origin = from === 'build' ? join(buildDir, posix.relative(buildWorkdir, source)) : join(ROOT, source)
      const target = join(appDir, posix.relative(workdir, posix.resolve(workdir, dest)), dest.endsWith('/') ? posix.basename(source) : '')
      mkdirSync(dirname(target), { recursive: true })
      cpSync(origin, target, { recursive: true })
    }
  }
  const ci = ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund']
  try {
    // The local npm cache usually has every package; the registry is the fallback.
    await run('npm', [...ci, '--offline'], { cwd: appDir })
  } catch {
    await run('npm', [...ci, '--prefer-offline'], { cwd: appDir })
  }
  // Dev-only packages per the lockfile (some devDependencies, e.g. ajv, are also needed at run time).
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
  const devOnly = Object.keys(lock.packages).filter((path) => lock.packages[path]!.dev === true)
  t.ok(devOnly.includes('node_modules/typescript') && devOnly.includes('node_modules/tsx'), 'the lockfile marks dev-only packages')
  t.same(devOnly.filter((path) => existsSync(join(appDir, path))), [], 'no dev-only package is installed')

  const upstream = await FakeUpstream.start()
  t.teardown(() => upstream.close())
  const [id] = upstream.add({ id: '1700000000000101', status: 'SUCCESS', progress: '100%' })
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: tmp,
    ...parseEnv(all(runtime, 'ENV')),
    PORT: String(port),
    HOST: '127.0.0.1',
    COMETAPI_BASE_URL: upstream.url,
    COMETAPI_KEY: 'sk-x',
    // Off by default in production; on here so the image's page assets are checked too.
    GRAPHIQL_ENABLED: 'true',
    DOCS_ENABLED: 'true'
  }
  // A clean environment: tap's NODE_OPTIONS (--import tsx) must not help the server start.
  const [command, ...args] = JSON.parse(all(runtime, 'CMD')[0]!) as string[]
  t.equal(command, 'node')
  const server: ChildProcess = spawn(process.execPath, args, { cwd: appDir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  server.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  server.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (server.exitCode === null) server.kill('SIGKILL') })

  let healthy = false
  for (let attempt = 0; attempt < 150 && !healthy && server.exitCode === null; attempt++) {
    healthy = await fetch(`${base}/healthz`).then((r) => r.ok, () => false)
    if (!healthy) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (!t.ok(healthy, '/healthz answers 200')) {
    t.comment(output)
    return
  }

  // The image's own HEALTHCHECK command.
  const healthcheck = JSON.parse(/CMD (\[.*\])$/.exec(all(runtime, 'HEALTHCHECK')[0]!)![1]!) as string[]
  const probe = await run(process.execPath, healthcheck.slice(1), { env }).then(() => 0, (err: { code: number }) => err.code)
  t.equal(probe, 0, 'HEALTHCHECK passes')

  const tasks = await fetch(`${base}/v1/tasks?ids=${id}`)
  t.equal(tasks.status, 200)
  t.match(await tasks.json(), [{ id, status: 'SUCCESS' }])
  t.equal(upstream.calls.length, 1)
  t.equal(upstream.calls[0]!.authorization, 'Bearer sk-x', 'COMETAPI_KEY is sent upstream')

  const graphql = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ task(id: "${id}") { id final } }` })
  })
  t.same(await graphql.json(), { data: { task: { id, final: true } } })
  // Files read at run time: the spec, swagger-ui's and GraphiQL's assets.
  for (const path of ['/openapi.yaml', '/docs', '/docs/static/swagger-ui-bundle.js', '/graphiql', '/graphiql/assets/graphiql.min.js']) {
    t.equal((await fetch(`${base}${path}`)).status, 200, `GET ${path}`)
  }

  server.kill('SIGTERM')
  if (!t.equal(await exited, 0, 'SIGTERM ends the process with exit code 0')) t.comment(output)
  t.notMatch(output, /"level":(50|60)/, 'no error logged')
})
