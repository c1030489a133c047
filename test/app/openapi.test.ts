import { readFileSync } from 'node:fs'
import t from 'tap'
import { createConfig, lint } from '@redocly/openapi-core'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { OPENAPI_PATH } from '../../src/routes/docs.js'
import { buildApp } from '../../src/app.js'
import { createSimulator, DEFAULT_KEY, SEED_TASK_IDS } from '../../src/simulator/index.js'
import type { UpstreamTask } from '../../src/upstream/types.js'
import { ManualClock, setup, waitFor } from '../helpers/gateway.js'
import { deref, documentedResponses, METHODS, pointer, ResponseChecker, spec, taskEvents, validator, type Json } from '../helpers/openapi.js'

/** `/v1/tasks/:id` (fastify) → `/v1/tasks/{id}` (OpenAPI). */
function specPath (url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

function fastifyPath (path: string): string {
  return path.replace(/\{([^}]+)\}/g, ':$1')
}

/**
 * Routes as fastify registered them, read from `printRoutes({ commonPrefix: false })`:
 * each line is a tree node whose full path is its ancestors' labels joined.
 */
function registeredRoutes (app: FastifyInstance): Array<{ method: string, url: string }> {
  const out: Array<{ method: string, url: string }> = []
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^((?:[│ ] {3})*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (match === null) continue
    const depth = match[1]!.length / 4
    stack.length = depth
    stack.push(match[2]!)
    const url = stack.join('')
    for (const method of match[3]?.split(', ') ?? []) out.push({ method, url })
  }
  return out
}

/** GraphQL, pages (GraphiQL, docs, dashboard), their assets, the favicon and the spec itself: not REST API routes. */
function isDocsOrUi (url: string): boolean {
  return url === '/graphql' || url === '/graphiql' || url.startsWith('/graphiql/') ||
    url === '/docs' || url.startsWith('/docs/') || url === '/openapi.yaml' ||
    url === '/' || url === '/dashboard' || url.startsWith('/dashboard/') || url === '/favicon.ico'
}

t.test('openapi.yaml is valid OpenAPI 3.1 (redocly recommended ruleset: no errors)', async (t) => {
  t.equal(spec.openapi, '3.1.0')
  const config = await createConfig({ extends: ['recommended'] })
  const problems = await lint({ ref: OPENAPI_PATH, config })
  const errors = problems.filter((p) => p.severity === 'error')
  for (const p of problems) t.comment(`${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`)
  t.same(errors.map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`), [], 'no lint errors')
})

t.test('every example in the document matches its schema', async (t) => {
  let checked = 0
  const media = (content: Json | undefined, where: string): void => {
    for (const [type, mt] of Object.entries<Json>(content ?? {})) {
      const base = where + pointer('content', type)
      if (mt.schema === undefined) continue
      const check = validator(base + '/schema')
      if (mt.example !== undefined) {
        t.equal(check(mt.example), undefined, `${base}/example`)
        checked++
      }
      for (const [name, ex] of Object.entries<Json>(mt.examples ?? {})) {
        t.equal(check(deref(ex, '').node.value), undefined, `${base}/examples/${name}`)
        checked++
      }
    }
  }
  for (const [path, item] of Object.entries<Json>(spec.paths)) {
    for (const method of METHODS) {
      const op = item[method]
      if (op === undefined) continue
      if (op.requestBody !== undefined) media(op.requestBody.content, pointer('paths', path, method, 'requestBody'))
      for (const [status, response] of Object.entries<Json>(op.responses)) {
        const { node, where } = deref(response, pointer('paths', path, method, 'responses', status))
        media(node.content, where)
      }
    }
  }
  t.ok(checked >= 15, `${checked} examples checked`)
})

t.test('the document and the registered routes agree', async (t) => {
  const { app } = await setup(t)
  await app.ready()
  const routes = registeredRoutes(app)
  t.ok(routes.some((r) => r.method === 'GET' && r.url === '/v1/tasks/:id'), 'the route listing was parsed')
  for (const r of routes) {
    if (!r.url.includes('*')) t.ok(app.hasRoute({ method: r.method as 'GET', url: r.url }), `parsed ${r.method} ${r.url} is a real route`)
  }

  // HEAD is fastify's automatic twin of each GET; OPTIONS would be CORS preflight.
  const api = routes.filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS' && !isDocsOrUi(r.url))
  for (const r of api) {
    t.ok(spec.paths[specPath(r.url)]?.[r.method.toLowerCase()], `${r.method} ${specPath(r.url)} is documented`)
  }
  for (const [path, item] of Object.entries<Json>(spec.paths)) {
    for (const method of METHODS) {
      if (item[method] === undefined) continue
      t.ok(app.hasRoute({ method: method.toUpperCase() as 'GET', url: fastifyPath(path) }), `${method.toUpperCase()} ${path} is registered`)
    }
  }
  t.ok(api.length >= 7, `${api.length} REST routes`)
})

t.test('GET /openapi.yaml serves the file as-is and /docs renders it', async (t) => {
  const { app } = await setup(t)
  const yaml = await app.inject({ url: '/openapi.yaml' })
  t.equal(yaml.statusCode, 200)
  t.match(yaml.headers['content-type'], /^application\/yaml/)
  t.equal(yaml.body, readFileSync(OPENAPI_PATH, 'utf8'))

  const docs = await app.inject({ url: '/docs' })
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /^text\/html/)
  t.match(docs.body, /swagger-ui-bundle\.js/)
  const bundle = await app.inject({ url: '/docs/static/swagger-ui-bundle.js' })
  t.equal(bundle.statusCode, 200, 'swagger-ui assets are served locally')
  const json = await app.inject({ url: '/docs/json' })
  t.same(json.json(), spec, 'the docs page reads the same document')
})

/*
 * Real responses, checked against the document: every documented status of
 * every route is produced below, on tidy and on sparse upstream rows and on
 * every upstream fault, and the last test checks that none was left out.
 */
const covered = new Set<string>()

const json = (body: unknown): InjectOptions => ({ headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })
const raw = (payload: string, type = 'application/json'): InjectOptions => ({ headers: { 'content-type': type }, payload })

type Route = ['GET' | 'POST', string, InjectOptions]

/** The five routes that read tasks, each asking for `id`. */
function readRoutes (id: string): Route[] {
  return [
    ['GET', '/v1/tasks', { url: `/v1/tasks?ids=${id}` }],
    ['POST', '/v1/tasks', { url: '/v1/tasks', ...json({ ids: [id] }) }],
    ['GET', '/v1/tasks/{id}', { url: `/v1/tasks/${id}` }],
    ['POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({ ids: [id] }) }],
    ['GET', '/mj/task/{id}/fetch', { url: `/mj/task/${id}/fetch` }]
  ]
}

/** Upstream's tidiest row: every field set. */
const TIDY: UpstreamTask = {
  id: '1700000000000101',
  action: 'IMAGINE',
  status: 'SUCCESS',
  progress: '100%',
  prompt: 'a lighthouse',
  promptEn: 'a lighthouse',
  description: 'Submit success',
  failReason: '',
  imageUrl: 'https://api.cometapi.com/mj/image/1700000000000101',
  state: '',
  submitTime: 1700000000000,
  startTime: 1700000002000,
  finishTime: 1700000030000,
  properties: { finalPrompt: 'a lighthouse' },
  buttons: [{ customId: 'MJ::JOB::upsample::1::8a7bd4a1-3a0c-4cf8-a65a-2bd2b4b46e58', emoji: '', label: 'U1', style: 2, type: 2 }],
  videoUrl: 'https://example.test/v.mp4'
}

/** Rows as sparse as upstream sends them: `null`, `0` and `""` (times included), extra fields. */
const IN_PROGRESS: UpstreamTask = { id: '1700000000000202', status: 'IN_PROGRESS', progress: '31%', failReason: null, finishTime: 0, properties: null, buttons: null }
const SPARSE: UpstreamTask = {
  id: '1700000000000303',
  action: 'VIDEO',
  status: 'NOT_START',
  progress: '',
  prompt: '',
  imageUrl: '',
  submitTime: '',
  startTime: '',
  finishTime: '',
  properties: null,
  buttons: null,
  botType: 'MID_JOURNEY',
  videoUrl: '',
  videoUrls: []
}

t.test('tidy and sparse rows on every read route: /v1 reads "" times as null, the drop-in routes answer the row as it came', async (t) => {
  const { app, upstream } = await setup(t, { limits: { bodyLimitBytes: 1024 } })
  const check = new ResponseChecker(t, covered)
  const huge = json({ ids: Array.from({ length: 200 }, (_, i) => `17000000000${i}`) })
  upstream.add(TIDY, IN_PROGRESS, SPARSE)
  const ids = `${TIDY.id},${IN_PROGRESS.id},${SPARSE.id}`

  // 200s, first from upstream (miss), then from cache (hit); both forms of ids.
  let res = await check.check(app, 'GET', '/v1/tasks', { url: `/v1/tasks?ids=${ids},1700000000000999` }, 200, 'list miss')
  t.equal(res.headers['x-cache'], 'miss')
  t.strictSame(res.json().map((task: Json | null) => task?.id ?? null), [TIDY.id, IN_PROGRESS.id, SPARSE.id, null], 'request order, null for the unknown id')
  t.strictSame(res.json()[2], { ...SPARSE, submitTime: null, startTime: null, finishTime: null }, '"" times are null, the rest as it came')
  res = await check.check(app, 'GET', '/v1/tasks', { url: `/v1/tasks?ids=${TIDY.id}&ids=${SPARSE.id}` }, 200, 'list hit, ids repeated')
  t.equal(res.headers['x-cache'], 'hit')
  res = await check.check(app, 'GET', '/v1/tasks', { url: '/v1/tasks' }, 200, 'list without ids')
  t.strictSame(res.json(), [])
  res = await check.check(app, 'POST', '/v1/tasks', { url: '/v1/tasks', ...json({ ids: [SPARSE.id, IN_PROGRESS.id] }) }, 200, 'post list')
  t.equal(res.json()[0].finishTime, null)
  res = await check.check(app, 'GET', '/v1/tasks/{id}', { url: `/v1/tasks/${SPARSE.id}` }, 200, 'one sparse task')
  t.strictSame([res.json().submitTime, res.json().botType, res.json().videoUrls], [null, 'MID_JOURNEY', []])
  res = await check.check(app, 'GET', '/v1/tasks/{id}', { url: `/v1/tasks/${TIDY.id}` }, 200, 'one task')
  t.equal(res.json().videoUrl, 'https://example.test/v.mp4', 'extra upstream fields pass through')

  res = await check.check(app, 'POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({ ids: [TIDY.id, '1700000000000998', SPARSE.id, TIDY.id] }) }, 200, 'drop-in list')
  t.strictSame(res.json(), [TIDY, SPARSE], 'unknown ids left out, duplicates collapsed, rows exactly as upstream sent them')
  res = await check.check(app, 'POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({}) }, 200, 'drop-in list without ids')
  t.strictSame(res.json(), [])
  res = await check.check(app, 'GET', '/mj/task/{id}/fetch', { url: `/mj/task/${SPARSE.id}/fetch` }, 200, 'drop-in fetch, sparse row')
  t.strictSame(res.json(), SPARSE)
  await check.check(app, 'GET', '/mj/task/{id}/fetch', { url: `/mj/task/${IN_PROGRESS.id}/fetch` }, 200, 'drop-in fetch')
  t.equal(upstream.calls.length, 2, 'the second upstream call was for the unknown id only')

  // Client mistakes: the gateway's body on /v1, upstream's body on the drop-in routes.
  res = await check.check(app, 'GET', '/v1/tasks', { url: '/v1/tasks?ids=1,bad!id' }, 400, 'list with a bad id')
  t.equal(res.json().code, 'GW_ERR_INVALID_ID')
  res = await check.check(app, 'POST', '/v1/tasks', { url: '/v1/tasks', ...raw('{"ids": [') }, 400, 'post list, not JSON')
  t.equal(res.json().code, 'GW_ERR_BAD_REQUEST')
  res = await check.check(app, 'POST', '/v1/tasks', { url: '/v1/tasks', ...raw('<ids/>', 'application/xml') }, 415, 'post list, xml')
  t.equal(res.json().code, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE')
  res = await check.check(app, 'POST', '/v1/tasks', { url: '/v1/tasks', ...huge }, 413, 'post list, too large')
  t.equal(res.json().code, 'GW_ERR_BODY_TOO_LARGE')
  res = await check.check(app, 'GET', '/v1/tasks/{id}', { url: '/v1/tasks/1700000000000997' }, 404, 'one unknown task')
  t.equal(res.json().code, 'GW_ERR_TASK_NOT_FOUND')
  await check.check(app, 'GET', '/v1/tasks/{id}', { url: '/v1/tasks/bad!id' }, 400, 'one task, bad id')
  res = await check.check(app, 'POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...raw('{"ids": [') }, 400, 'drop-in list, not JSON')
  t.strictSame(res.json(), { description: 'do_request_failed ', type: 'upstream_error', code: 4 }, "upstream's exact body")
  res = await check.check(app, 'POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({ ids: 'x' }) }, 400, 'drop-in list, ids not a list')
  t.match(res.json().description, /^do_request_failed: /)
  await check.check(app, 'POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({ ids: ['bad!id'] }) }, 400, 'drop-in list, bad id')
  await check.check(app, 'POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...raw('<ids/>', 'application/xml') }, 415, 'drop-in list, xml')
  await check.check(app, 'POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...huge }, 413, 'drop-in list, too large')
  res = await check.check(app, 'GET', '/mj/task/{id}/fetch', { url: '/mj/task/1700000000000996/fetch' }, 400, 'drop-in fetch, unknown id')
  t.strictSame(res.json(), { description: 'task_no_found ', type: 'upstream_error', code: 4 }, "upstream's exact body, trailing space")
  await check.check(app, 'GET', '/mj/task/{id}/fetch', { url: '/mj/task/bad!id/fetch' }, 400, 'drop-in fetch, bad id')
})

t.test('every upstream fault on every read route: 502, 503, 504 coded, or the stale row', async (t) => {
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, { upstream: { retries: 0, timeoutMs: 300 } }, { now: clock.now })
  const check = new ResponseChecker(t, covered)
  upstream.add(IN_PROGRESS, SPARSE)
  // A good lookup after each failure keeps the circuit breaker closed, so every failure reaches upstream.
  let recoveries = 0
  const recover = async (): Promise<void> => {
    const ok = await app.inject({ url: `/v1/tasks?ids=recover${recoveries++}` })
    t.equal(ok.statusCode, 200, 'upstream answers again')
  }
  const faults: Array<[string, Parameters<typeof upstream.script>[0], number, string]> = [
    ['upstream 500', { kind: 'status', status: 500 }, 502, 'UPSTREAM_ERROR'],
    ['a body that is not JSON', { kind: 'raw', body: '<html>oops</html>', contentType: 'text/html' }, 502, 'UPSTREAM_BAD_RESPONSE'],
    ['an object where a list belongs', { kind: 'json', body: { data: [] } }, 502, 'UPSTREAM_BAD_RESPONSE'],
    ['upstream 429', { kind: 'status', status: 429, headers: { 'retry-after': '1' } }, 503, 'UPSTREAM_RATE_LIMITED'],
    ['upstream hangs', { kind: 'hang' }, 504, 'UPSTREAM_TIMEOUT']
  ]
  let n = 0
  for (const [fault, behaviour, status, code] of faults) {
    for (const [method, path, request] of readRoutes(`17000000001${String(n++).padStart(5, '0')}`)) {
      upstream.script(behaviour)
      const res = await check.check(app, method, path, request, status, `${method} ${path}, ${fault}`)
      t.equal(res.json().code, code, `${method} ${path}, ${fault}: ${code}`)
      await recover()
    }
  }

  // Stale: the unfinished rows have expired and upstream fails, so the cached copies are served, marked.
  await app.inject(`/v1/tasks?ids=${IN_PROGRESS.id},${SPARSE.id}`)
  clock.advance(5_000)
  for (const [method, path, request] of [...readRoutes(IN_PROGRESS.id), ...readRoutes(SPARSE.id)]) {
    upstream.script({ kind: 'status', status: 500 })
    const res = await check.check(app, method, path, request, 200, `${method} ${path} ${String(request.url)}, stale`)
    t.equal(res.headers['x-cache'], 'stale')
    t.ok(res.headers.age !== undefined && res.headers.warning !== undefined, 'Age and Warning on a stale answer')
    await recover()
  }
})

t.test('pass-through: upstream refusing or rate limiting the tenant\'s own key on every read route is 401, 403 or 429, coded', async (t) => {
  const { app, upstream } = await setup(t, { upstream: { auth: 'passthrough', key: undefined, retries: 0 } })
  const check = new ResponseChecker(t, covered)
  const withKey = (request: InjectOptions): InjectOptions => ({ ...request, headers: { ...request.headers, authorization: 'Bearer sk-tenant-0000000000000001' } })
  const refusals = [
    [401, 'UPSTREAM_UNAUTHORIZED', {}],
    [403, 'UPSTREAM_FORBIDDEN', {}],
    [429, 'UPSTREAM_CREDENTIAL_RATE_LIMITED', { 'retry-after': '30' }]
  ] as const
  for (const [status, code, headers] of refusals) {
    for (const [method, path, request] of readRoutes(`17000000002${status}`)) {
      upstream.script({ kind: 'status', status, headers })
      const res = await check.check(app, method, path, withKey(request), status, `${method} ${path}, upstream ${status} on the tenant's key`)
      t.equal(res.json().code, code)
    }
  }
  t.equal(upstream.calls.length, 15, 'one upstream call per request: a refusal is never retried')
})

t.test('an open circuit breaker on every read route: 503 with Retry-After, no upstream call', async (t) => {
  const { app, upstream } = await setup(t, { upstream: { retries: 0 }, breaker: { threshold: 1, cooldownMs: 600_000 } })
  const check = new ResponseChecker(t, covered)
  upstream.script({ kind: 'status', status: 500 })
  t.equal((await app.inject('/v1/tasks/1700000000000404')).statusCode, 502, 'one failure opens the breaker')
  for (const [method, path, request] of readRoutes('1700000000000405')) {
    const res = await check.check(app, method, path, request, 503, `${method} ${path}, breaker open`)
    t.equal(res.json().code, 'UPSTREAM_CIRCUIT_OPEN')
    t.equal(res.headers['retry-after'], '600')
  }
  t.equal(upstream.calls.length, 1, 'nothing reached upstream while the breaker was open')
})

t.test('the event stream: sparse task events match Task, refusals are JSON', async (t) => {
  const { app, upstream } = await setup(t, { watch: { maxIds: 2 } })
  const check = new ResponseChecker(t, covered)
  const final = { ...SPARSE, id: '1700000000000505', status: 'FAILURE' }
  upstream.add(TIDY, final)
  await check.check(app, 'GET', '/v1/tasks/stream', { url: '/v1/tasks/stream?ids=' }, 400, 'stream without ids')
  const res = await check.check(app, 'GET', '/v1/tasks/stream', { url: `/v1/tasks/stream?ids=${TIDY.id}&ids=${final.id}` }, 200, 'stream of final tasks')
  t.match(res.body, /event: task\n[^]*event: done\n/)
  const events = taskEvents(res.body)
  t.equal(events.length, 2)
  const isTask = validator('/components/schemas/Task')
  for (const event of events) t.equal(isTask(event), undefined, 'a task event is a Task')
  t.strictSame(events[1], { ...final, submitTime: null, startTime: null, finishTime: null })
  const full = await check.check(app, 'GET', '/v1/tasks/stream', { url: '/v1/tasks/stream?ids=1,2,3' }, 503, 'stream past WATCH_MAX_IDS')
  t.equal(full.json().code, 'GW_ERR_WATCH_FULL')
})

t.test('operations, and 401s without a key', async (t) => {
  const { app } = await setup(t)
  const check = new ResponseChecker(t, covered)
  // Pass-through auth without a key (401) and a metrics token that is not sent.
  const locked = await setup(t, { upstream: { auth: 'passthrough', key: undefined }, metrics: { token: 'metrics-secret' } })
  await check.check(app, 'GET', '/healthz', { url: '/healthz' }, 200, 'healthz')
  await check.check(app, 'GET', '/readyz', { url: '/readyz' }, 200, 'readyz')
  app.gateway.readiness = () => ({ ready: false, reason: 'shutting down', breaker: { state: 'closed', retryInMs: 0 } })
  await check.check(app, 'GET', '/readyz', { url: '/readyz' }, 503, 'readyz, not ready')
  await check.check(app, 'GET', '/metrics', { url: '/metrics' }, 200, 'metrics')

  for (const [method, path, request] of readRoutes('1700000000000606')) {
    const res = await check.check(locked.app, method, path, request, 401, `${method} ${path} without a key`)
    t.equal(res.json().code, 'UNAUTHENTICATED')
  }
  await check.check(locked.app, 'GET', '/v1/tasks/stream', { url: '/v1/tasks/stream?ids=1700000000000606' }, 401, 'stream without a key')
  await check.check(locked.app, 'POST', '/mj/submit/{action}', { url: '/mj/submit/imagine', ...json({ prompt: 'a fox' }) }, 401, 'submit without a key')
  await check.check(locked.app, 'GET', '/mj/image/{id}', { url: `/mj/image/${SEED_TASK_IDS.success}` }, 401, 'image without a key')
  const res = await check.check(locked.app, 'GET', '/metrics', { url: '/metrics' }, 401, 'metrics without the token')
  t.equal(res.headers['www-authenticate'], 'Bearer realm="metrics"')
  t.equal(locked.upstream.calls.length, 0, 'nothing reached upstream without a key')
})

t.test('the rate limit on every limited route: 429 with Retry-After', async (t) => {
  const { app, upstream } = await setup(t, { security: { rateLimitMax: 1, rateLimitWindowMs: 86_400_000 } })
  const check = new ResponseChecker(t, covered)
  t.equal((await app.inject('/v1/tasks')).statusCode, 200, 'the one request of the window')
  const routes: Route[] = [
    ...readRoutes('1700000000000707'),
    ['GET', '/v1/tasks/stream', { url: '/v1/tasks/stream?ids=1700000000000707' }],
    ['POST', '/mj/submit/{action}', { url: '/mj/submit/imagine', ...json({ prompt: 'a fox' }) }],
    ['GET', '/mj/image/{id}', { url: '/mj/image/1700000000000707' }],
    ['GET', '/metrics', { url: '/metrics' }]
  ]
  for (const [method, path, request] of routes) {
    const res = await check.check(app, method, path, request, 429, `${method} ${path}, rate limited`)
    t.equal(res.json().code, 'GW_ERR_RATE_LIMITED')
  }
  await check.check(app, 'GET', '/healthz', { url: '/healthz' }, 200, 'healthz is never limited')
  t.equal(upstream.calls.length, 0)
})

t.test('the relayed routes in front of the simulator, upstream faults included', async (t) => {
  const sim = await createSimulator()
  const simUrl = await sim.listen()
  const relay = await buildApp({ upstream: { baseUrl: simUrl, key: DEFAULT_KEY, retries: 0, timeoutMs: 300 }, limits: { bodyLimitBytes: 1024, submitBodyLimitBytes: 4096 } }, { logger: false })
  t.teardown(async () => {
    await relay.close()
    await sim.close()
  })
  const check = new ResponseChecker(t, covered)
  const submit = (action: string, body: unknown): InjectOptions => ({ url: `/mj/submit/${action}`, ...json(body) })
  const fox = submit('imagine', { prompt: 'a fox' })
  let res = await check.check(relay, 'POST', '/mj/submit/{action}', submit('imagine', { prompt: 'a red fox in snow' }), 200, 'submit')
  t.equal(res.json().code, 1)
  res = await check.check(relay, 'POST', '/mj/submit/{action}', submit('imagine', { prompt: 'banned words' }), 200, 'submit, refused')
  t.not(res.json().code, 1)
  res = await check.check(relay, 'POST', '/mj/submit/{action}', submit('imagine', {}), 400, 'submit without a prompt')
  t.equal(res.json().type, 'upstream_error', "upstream's own 400, relayed")
  res = await check.check(relay, 'POST', '/mj/submit/{action}', submit('Imagine!', {}), 400, 'submit, bad action')
  t.equal(res.json().code, 'GW_ERR_BAD_REQUEST')
  await check.check(relay, 'POST', '/mj/submit/{action}', submit('unknown', {}), 404, 'submit, action upstream lacks')
  await check.check(relay, 'POST', '/mj/submit/{action}', { url: '/mj/submit/imagine', ...raw('<x/>', 'application/xml') }, 415, 'submit, xml')
  res = await check.check(relay, 'POST', '/mj/submit/{action}', submit('imagine', { prompt: 'a fox '.repeat(400) }), 200, 'submit past BODY_LIMIT_BYTES, inside SUBMIT_BODY_LIMIT_BYTES')
  t.equal(res.json().code, 1)
  res = await check.check(relay, 'POST', '/mj/submit/{action}', { url: '/mj/submit/imagine', ...json({ prompt: 'x'.repeat(5000) }) }, 413, 'submit, too large')
  t.equal(res.json().code, 'GW_ERR_BODY_TOO_LARGE')
  // Idempotency keys: a replayed answer (2xx and 4xx), a bad key, a reused key, a key in flight.
  const keyed = (key: string, body: unknown): InjectOptions => ({ url: '/mj/submit/imagine', headers: { 'content-type': 'application/json', 'idempotency-key': key }, payload: JSON.stringify(body) })
  await check.check(relay, 'POST', '/mj/submit/{action}', keyed('spec-1', { prompt: 'a red fox' }), 200, 'submit with a key')
  res = await check.check(relay, 'POST', '/mj/submit/{action}', keyed('spec-1', { prompt: 'a red fox' }), 200, 'submit, replayed')
  t.equal(res.headers['idempotent-replayed'], 'true')
  await check.check(relay, 'POST', '/mj/submit/{action}', keyed('spec-2', {}), 400, 'submit with a key, refused upstream')
  res = await check.check(relay, 'POST', '/mj/submit/{action}', keyed('spec-2', {}), 400, 'submit, refusal replayed')
  t.equal(res.headers['idempotent-replayed'], 'true')
  res = await check.check(relay, 'POST', '/mj/submit/{action}', keyed('k'.repeat(300), { prompt: 'a fox' }), 400, 'submit, key too long')
  t.equal(res.json().code, 'GW_ERR_IDEMPOTENCY_KEY_INVALID')
  res = await check.check(relay, 'POST', '/mj/submit/{action}', keyed('spec-1', { prompt: 'another fox' }), 422, 'submit, key reused')
  t.equal(res.json().code, 'GW_ERR_IDEMPOTENCY_KEY_REUSED')
  sim.faults.add({ route: 'imagine', kind: 'hang', times: 1 })
  const hanging = relay.inject({ method: 'POST', ...keyed('spec-3', { prompt: 'a fox' }) })
  await waitFor(() => sim.allCalls.some((call) => call.route === 'imagine' && call.fault === 'hang'), 'the hanging submit to reach upstream')
  res = await check.check(relay, 'POST', '/mj/submit/{action}', keyed('spec-3', { prompt: 'a fox' }), 409, 'submit, key in flight')
  t.equal(res.json().code, 'GW_ERR_IDEMPOTENCY_KEY_IN_USE')
  t.equal((await hanging).statusCode, 504)
  sim.faults.add({ route: 'imagine', kind: 'rate-limit', retryAfterSeconds: 3, times: 1 })
  res = await check.check(relay, 'POST', '/mj/submit/{action}', fox, 429, 'submit, upstream 429')
  t.equal(res.headers['retry-after'], '3', "upstream's Retry-After")
  t.equal(res.json().type, 'upstream_error', "upstream's body, relayed")
  const submitFaults: Array<[string, Parameters<typeof sim.faults.add>[0], number, string]> = [
    ['upstream 500', { route: 'imagine', kind: 'error', status: 500, times: 1 }, 502, 'UPSTREAM_ERROR'],
    ['an HTML 502 page', { route: 'imagine', kind: 'malformed', body: 'html', times: 1 }, 502, 'UPSTREAM_ERROR'],
    ['a 200 that is not JSON', { route: 'imagine', kind: 'malformed', body: 'text', times: 1 }, 502, 'UPSTREAM_BAD_RESPONSE'],
    ['upstream 503', { route: 'imagine', kind: 'error', status: 503, times: 1 }, 503, 'UPSTREAM_UNAVAILABLE'],
    ['upstream hangs', { route: 'imagine', kind: 'hang', times: 1 }, 504, 'UPSTREAM_TIMEOUT']
  ]
  for (const [fault, spec, status, code] of submitFaults) {
    sim.faults.add(spec)
    res = await check.check(relay, 'POST', '/mj/submit/{action}', fox, status, `submit, ${fault}`)
    t.equal(res.json().code, code, `submit, ${fault}: ${code}`)
  }

  const image: InjectOptions = { url: `/mj/image/${SEED_TASK_IDS.success}` }
  res = await check.check(relay, 'GET', '/mj/image/{id}', image, 200, 'image')
  t.match(res.headers['content-type'], /^image\//)
  await check.check(relay, 'GET', '/mj/image/{id}', { url: '/mj/image/1700000000000995' }, 404, 'image, unknown task')
  await check.check(relay, 'GET', '/mj/image/{id}', { url: '/mj/image/bad!id' }, 400, 'image, bad id')
  sim.faults.add({ route: 'image', kind: 'error', status: 403, times: 1 })
  await check.check(relay, 'GET', '/mj/image/{id}', image, 403, 'image, upstream 403')
  sim.faults.add({ route: 'image', kind: 'rate-limit', retryAfterSeconds: 4, times: 1 })
  res = await check.check(relay, 'GET', '/mj/image/{id}', image, 429, 'image, upstream 429')
  t.equal(res.headers['retry-after'], '4')
  const imageFaults: Array<[string, Parameters<typeof sim.faults.add>[0], number, string]> = [
    ['upstream 500', { route: 'image', kind: 'error', status: 500, times: 1 }, 502, 'UPSTREAM_ERROR'],
    ['upstream 503', { route: 'image', kind: 'error', status: 503, times: 1 }, 503, 'UPSTREAM_UNAVAILABLE'],
    ['upstream hangs', { route: 'image', kind: 'hang', times: 1 }, 504, 'UPSTREAM_TIMEOUT']
  ]
  for (const [fault, spec, status, code] of imageFaults) {
    sim.faults.add(spec)
    res = await check.check(relay, 'GET', '/mj/image/{id}', image, status, `image, ${fault}`)
    t.equal(res.json().code, code, `image, ${fault}: ${code}`)
  }

  // Nothing listening upstream: 502 on the relayed routes (they are never retried).
  await sim.close()
  res = await check.check(relay, 'POST', '/mj/submit/{action}', fox, 502, 'submit, upstream down')
  t.equal(res.json().code, 'UPSTREAM_ERROR')
  await check.check(relay, 'GET', '/mj/image/{id}', image, 502, 'image, upstream down')
})

t.test('every documented status of every route was produced and checked above', async (t) => {
  t.strictSame([...documentedResponses()].filter((r) => !covered.has(r)), [])
})
