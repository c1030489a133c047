import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import Ajv2020Module from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { createConfig, lint } from '@redocly/openapi-core'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { OPENAPI_PATH } from '../../src/routes/docs.js'
import { buildApp } from '../../src/app.js'
import { createSimulator, DEFAULT_KEY, SEED_TASK_IDS } from '../../src/simulator/index.js'
import { ManualClock, setup } from '../helpers/gateway.js'

// ajv is CommonJS: under NodeNext the default import is module.exports, whose `default` is the class.
const Ajv2020 = Ajv2020Module.default
const addFormats = addFormatsModule.default

type Json = Record<string, any>

const spec: Json = parse(readFileSync(OPENAPI_PATH, 'utf8'))
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const

const ajv = new Ajv2020({ allErrors: true })
addFormats(ajv)
// OpenAPI's annotation keywords in schema objects, and the document's own top-level
// fields: ajv compiles the document's root when it resolves a ref into it.
ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs',
  'openapi', 'info', 'servers', 'tags', 'paths', 'components', 'security', 'webhooks', 'jsonSchemaDialect'])
ajv.addSchema(spec, 'openapi')

/** A JSON pointer as a URI fragment: `~` and `/` escaped, then percent-encoded (`{id}`). */
function pointer (...segments: string[]): string {
  return segments.map((s) => '/' + encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('')
}

function at (ref: string): Json {
  let node: any = spec
  for (const raw of ref.replace(/^#\//, '').split('/')) node = node[decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')]
  if (node === undefined) throw new Error(`${ref} is not in openapi.yaml`)
  return node
}

/** Follows a `$ref` (response, header, example) and returns the node with the pointer it lives at. */
function deref (node: Json, where: string): { node: Json, where: string } {
  while (typeof node.$ref === 'string') {
    where = node.$ref.slice(1)
    node = at(node.$ref)
  }
  return { node, where }
}

function validator (where: string): (value: unknown) => string | undefined {
  // Compiling a $ref into the document compiles only that schema, never the document's root.
  const validate = ajv.compile({ $ref: `openapi#${where}` })
  return (value) => validate(value) ? undefined : ajv.errorsText(validate.errors, { dataVar: 'body' })
}

/** `/v1/tasks/:id` (fastify) → `/v1/tasks/{id}` (OpenAPI). */
function specPath (url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

function fastifyPath (path: string): string {
  return path.replace(/\{([^}]+)\}/g, ':$1')
}

/** Every documented `METHOD /path status`, except `default`. */
function documentedResponses (): Set<string> {
  const out = new Set<string>()
  for (const [path, item] of Object.entries<Json>(spec.paths)) {
    for (const method of METHODS) {
      for (const status of Object.keys(item[method]?.responses ?? {})) {
        if (status !== 'default') out.add(`${method.toUpperCase()} ${path} ${status}`)
      }
    }
  }
  return out
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

/** GraphQL, pages (GraphiQL, docs, dashboard), their assets and the spec itself: not REST API routes. */
function isDocsOrUi (url: string): boolean {
  return url === '/graphql' || url === '/graphiql' || url.startsWith('/graphiql/') ||
    url === '/docs' || url.startsWith('/docs/') || url === '/openapi.yaml' ||
    url === '/' || url === '/dashboard' || url.startsWith('/dashboard/')
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

t.test('real responses of every documented route and status match the document', async (t) => {
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, {
    upstream: { retries: 0, timeoutMs: 300 },
    limits: { bodyLimitBytes: 1024 }
  }, { now: clock.now })
  const covered = new Set<string>()

  /** Sends a request and checks status, media type, body and headers against the operation. */
  async function check (method: 'GET' | 'POST', path: string, request: InjectOptions, expectStatus: number, name: string, on = app): Promise<LightMyRequestResponse> {
    const res = await on.inject({ method, ...request })
    const op = spec.paths[path]?.[method.toLowerCase()]
    t.ok(op, `${method} ${path} is documented`)
    t.equal(res.statusCode, expectStatus, `${name}: status`)
    // An exact status wins over its range (`4XX`), as in OpenAPI.
    const exact = String(res.statusCode)
    const status = op.responses[exact] !== undefined ? exact : `${exact[0]}XX`
    const documented = op.responses[status] !== undefined
    t.ok(documented, `${name}: ${method} ${path} documents ${exact}`)
    if (!documented) return res
    covered.add(`${method} ${path} ${status}`)
    const { node: response, where } = deref(op.responses[status], pointer('paths', path, method.toLowerCase(), 'responses', status))

    const type = String(res.headers['content-type'] ?? '').split(';')[0]!.trim()
    const mediaKey = [type, type.replace(/\/.*/, '/*')].find((key) => response.content?.[key] !== undefined)
    t.ok(mediaKey, `${name}: ${type} is a documented media type`)
    if (mediaKey !== undefined && response.content[mediaKey].schema !== undefined) {
      const body = type === 'application/json' ? res.json() : res.body
      t.equal(validator(where + pointer('content', mediaKey, 'schema'))(body), undefined, `${name}: body matches the schema`)
    }
    for (const [header, raw] of Object.entries<Json>(response.headers ?? {})) {
      const { node, where: headerAt } = deref(raw, where + pointer('headers', header))
      const value = res.headers[header.toLowerCase()]
      if (value === undefined) {
        t.notOk(node.required, `${name}: required header ${header} is present`)
        continue
      }
      t.equal(validator(headerAt + '/schema')(value), undefined, `${name}: header ${header}: ${String(value)}`)
    }
    return res
  }

  const json = (body: unknown): InjectOptions => ({ headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })
  const raw = (payload: string, type = 'application/json'): InjectOptions => ({ headers: { 'content-type': type }, payload })
  const huge = json({ ids: Array.from({ length: 200 }, (_, i) => `17000000000${i}`) })

  const [done, live] = upstream.add({
    id: '1700000000000101',
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
  }, {
    id: '1700000000000202',
    status: 'IN_PROGRESS',
    progress: '31%',
    failReason: null,
    finishTime: 0,
    properties: null,
    buttons: null
  }) as [string, string]

  // 200s, first from upstream (miss), then from cache (hit).
  let res = await check('GET', '/v1/tasks', { url: `/v1/tasks?ids=${done},${live},1700000000000999` }, 200, 'list miss')
  t.equal(res.headers['x-cache'], 'miss')
  t.same(res.json().map((task: Json | null) => task?.id ?? null), [done, live, null], 'request order, null for the unknown id')
  res = await check('GET', '/v1/tasks', { url: `/v1/tasks?ids=${done}` }, 200, 'list hit')
  t.equal(res.headers['x-cache'], 'hit')
  await check('POST', '/v1/tasks', { url: '/v1/tasks', ...json({ ids: [live, done] }) }, 200, 'post list')
  res = await check('GET', '/v1/tasks/{id}', { url: `/v1/tasks/${done}` }, 200, 'one task')
  t.equal(res.json().videoUrl, 'https://example.test/v.mp4', 'extra upstream fields pass through')
  res = await check('POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({ ids: [done, '1700000000000998', done] }) }, 200, 'drop-in list')
  t.same(res.json().map((task: Json) => task.id), [done], 'unknown ids left out, duplicates collapsed')
  res = await check('POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({}) }, 200, 'drop-in list without ids')
  t.same(res.json(), [])
  await check('GET', '/mj/task/{id}/fetch', { url: `/mj/task/${live}/fetch` }, 200, 'drop-in fetch')

  // Client mistakes: the gateway's body on /v1, upstream's body on the drop-in routes.
  res = await check('GET', '/v1/tasks', { url: '/v1/tasks' }, 400, 'list without ids')
  t.equal(res.json().code, 'GW_ERR_BAD_REQUEST')
  res = await check('GET', '/v1/tasks', { url: '/v1/tasks?ids=1,bad!id' }, 400, 'list with a bad id')
  t.equal(res.json().code, 'GW_ERR_INVALID_ID')
  res = await check('POST', '/v1/tasks', { url: '/v1/tasks', ...raw('{"ids": [') }, 400, 'post list, not JSON')
  t.equal(res.json().code, 'GW_ERR_BAD_REQUEST')
  res = await check('POST', '/v1/tasks', { url: '/v1/tasks', ...raw('<ids/>', 'application/xml') }, 415, 'post list, xml')
  t.equal(res.json().code, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE')
  res = await check('POST', '/v1/tasks', { url: '/v1/tasks', ...huge }, 413, 'post list, too large')
  t.equal(res.json().code, 'GW_ERR_BODY_TOO_LARGE')
  res = await check('GET', '/v1/tasks/{id}', { url: '/v1/tasks/1700000000000997' }, 404, 'one unknown task')
  t.equal(res.json().code, 'GW_ERR_TASK_NOT_FOUND')
  await check('GET', '/v1/tasks/{id}', { url: '/v1/tasks/bad!id' }, 400, 'one task, bad id')
  res = await check('POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...raw('{"ids": [') }, 400, 'drop-in list, not JSON')
  t.same(res.json(), { description: 'do_request_failed ', type: 'upstream_error', code: 4 }, "upstream's exact body")
  res = await check('POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({ ids: 'x' }) }, 400, 'drop-in list, ids not a list')
  t.match(res.json().description, /^do_request_failed: /)
  await check('POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({ ids: ['bad!id'] }) }, 400, 'drop-in list, bad id')
  await check('POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...raw('<ids/>', 'application/xml') }, 415, 'drop-in list, xml')
  await check('POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...huge }, 413, 'drop-in list, too large')
  res = await check('GET', '/mj/task/{id}/fetch', { url: '/mj/task/1700000000000996/fetch' }, 400, 'drop-in fetch, unknown id')
  t.same(res.json(), { description: 'task_no_found ', type: 'upstream_error', code: 4 }, "upstream's exact body, trailing space")
  await check('GET', '/mj/task/{id}/fetch', { url: '/mj/task/bad!id/fetch' }, 400, 'drop-in fetch, bad id')

  // Upstream failures on every task route: 502 (error status), 503 (rate limited), 504 (no answer).
  const taskRoutes = (id: string): Array<['GET' | 'POST', string, InjectOptions]> => [
    ['GET', '/v1/tasks', { url: `/v1/tasks?ids=${id}1` }],
    ['POST', '/v1/tasks', { url: '/v1/tasks', ...json({ ids: [`${id}2`] }) }],
    ['GET', '/v1/tasks/{id}', { url: `/v1/tasks/${id}3` }],
    ['POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({ ids: [`${id}4`] }) }],
    ['GET', '/mj/task/{id}/fetch', { url: `/mj/task/${id}5/fetch` }]
  ]
  // Pass-through auth without a key (401) and a metrics token that is not sent.
  const locked = await setup(t, { upstream: { auth: 'passthrough', key: undefined }, metrics: { token: 'metrics-secret' } })

  // A good lookup after each failure keeps the circuit breaker closed, so every failure reaches upstream.
  let recoveries = 0
  const recover = async (): Promise<void> => {
    const ok = await app.inject({ url: `/v1/tasks?ids=recover${recoveries++}` })
    t.equal(ok.statusCode, 200, 'upstream answers again')
  }
  for (const [method, path, request] of taskRoutes('502')) {
    upstream.script({ kind: 'status', status: 500 })
    res = await check(method, path, request, 502, `${method} ${path}, upstream 500`)
    t.equal(res.json().code, 'UPSTREAM_ERROR')
    await recover()
  }
  for (const [method, path, request] of taskRoutes('503')) {
    upstream.script({ kind: 'status', status: 429, headers: { 'retry-after': '1' } })
    res = await check(method, path, request, 503, `${method} ${path}, upstream 429`)
    t.equal(res.json().code, 'UPSTREAM_RATE_LIMITED')
    await recover()
  }
  for (const [method, path, request] of taskRoutes('504')) {
    upstream.script({ kind: 'hang' })
    res = await check(method, path, request, 504, `${method} ${path}, upstream hangs`)
    t.equal(res.json().code, 'UPSTREAM_TIMEOUT')
    await recover()
  }

  // Pass-through: upstream refuses or rate limits the tenant's own key (401, 403, 429).
  const tenant = await setup(t, { upstream: { auth: 'passthrough', key: undefined, retries: 0 } })
  const withKey = (request: InjectOptions): InjectOptions => ({ ...request, headers: { ...request.headers, authorization: 'Bearer sk-tenant-0000000000000001' } })
  const refusals = [
    [401, 'UPSTREAM_UNAUTHORIZED', {}],
    [403, 'UPSTREAM_FORBIDDEN', {}],
    [429, 'UPSTREAM_CREDENTIAL_RATE_LIMITED', { 'retry-after': '30' }]
  ] as const
  for (const [status, code, headers] of refusals) {
    for (const [method, path, request] of taskRoutes(String(status))) {
      tenant.upstream.script({ kind: 'status', status, headers })
      res = await check(method, path, withKey(request), status, `${method} ${path}, upstream ${status} on the tenant's key`, tenant.app)
      t.equal(res.json().code, code)
    }
  }

  // Stale: the unfinished task has expired and upstream fails, so the cached copy is served, marked.
  clock.advance(5_000)
  const staleRoutes: Array<['GET' | 'POST', string, InjectOptions]> = [
    ['GET', '/v1/tasks', { url: `/v1/tasks?ids=${live}` }],
    ['POST', '/v1/tasks', { url: '/v1/tasks', ...json({ ids: [live] }) }],
    ['GET', '/v1/tasks/{id}', { url: `/v1/tasks/${live}` }],
    ['POST', '/mj/task/list-by-condition', { url: '/mj/task/list-by-condition', ...json({ ids: [live] }) }],
    ['GET', '/mj/task/{id}/fetch', { url: `/mj/task/${live}/fetch` }]
  ]
  for (const [method, path, request] of staleRoutes) {
    upstream.script({ kind: 'status', status: 500 })
    res = await check(method, path, request, 200, `${method} ${path}, stale`)
    t.equal(res.headers['x-cache'], 'stale')
    t.ok(res.headers.age !== undefined && res.headers.warning !== undefined, 'Age and Warning on a stale answer')
    await recover()
  }

  // The event stream: a refusal is plain JSON; final tasks end the stream with `done`.
  await check('GET', '/v1/tasks/stream', { url: '/v1/tasks/stream?ids=' }, 400, 'stream without ids')
  res = await check('GET', '/v1/tasks/stream', { url: `/v1/tasks/stream?ids=${done}` }, 200, 'stream of a final task')
  t.match(res.body, /event: task\n[^]*event: done\n/)
  await check('GET', '/v1/tasks/stream', { url: `/v1/tasks/stream?ids=${done}` }, 401, 'stream without a key', locked.app)

  // Operations.
  await check('GET', '/healthz', { url: '/healthz' }, 200, 'healthz')
  await check('GET', '/readyz', { url: '/readyz' }, 200, 'readyz')
  app.gateway.readiness = () => ({ ready: false, reason: 'shutting down', breaker: { state: 'closed', retryInMs: 0 } })
  await check('GET', '/readyz', { url: '/readyz' }, 503, 'readyz, not ready')
  await check('GET', '/metrics', { url: '/metrics' }, 200, 'metrics')

  // 401s: pass-through auth without a key, and a metrics token that was not sent.
  for (const [method, path, request] of taskRoutes('401')) {
    res = await check(method, path, request, 401, `${method} ${path} without a key`, locked.app)
    t.equal(res.json().code, 'UNAUTHENTICATED')
  }
  res = await check('GET', '/metrics', { url: '/metrics' }, 401, 'metrics without the token', locked.app)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="metrics"')
  t.equal(locked.upstream.calls.length, 0, 'nothing reached upstream without a key')

  // Relayed routes, in front of the simulator (the fake upstream only knows list-by-condition).
  const sim = await createSimulator()
  const simUrl = await sim.listen()
  const relay = await buildApp({ upstream: { baseUrl: simUrl, key: DEFAULT_KEY, retries: 0, timeoutMs: 300 }, limits: { bodyLimitBytes: 1024, submitBodyLimitBytes: 4096 } }, { logger: false })
  t.teardown(async () => {
    await relay.close()
    await sim.close()
  })
  const submit = (action: string, body: unknown): InjectOptions => ({ url: `/mj/submit/${action}`, ...json(body) })
  res = await check('POST', '/mj/submit/{action}', submit('imagine', { prompt: 'a red fox in snow' }), 200, 'submit', relay)
  t.equal(res.json().code, 1)
  res = await check('POST', '/mj/submit/{action}', submit('imagine', { prompt: 'banned words' }), 200, 'submit, refused', relay)
  t.not(res.json().code, 1)
  res = await check('POST', '/mj/submit/{action}', submit('imagine', {}), 400, 'submit without a prompt', relay)
  t.equal(res.json().type, 'upstream_error', "upstream's own 400, relayed")
  res = await check('POST', '/mj/submit/{action}', submit('Imagine!', {}), 400, 'submit, bad action', relay)
  t.equal(res.json().code, 'GW_ERR_BAD_REQUEST')
  await check('POST', '/mj/submit/{action}', submit('unknown', {}), 404, 'submit, action upstream lacks', relay)
  await check('POST', '/mj/submit/{action}', { url: '/mj/submit/imagine', ...raw('<x/>', 'application/xml') }, 415, 'submit, xml', relay)
  res = await check('POST', '/mj/submit/{action}', submit('imagine', { prompt: 'a fox '.repeat(400) }), 200, 'submit past BODY_LIMIT_BYTES, inside SUBMIT_BODY_LIMIT_BYTES', relay)
  t.equal(res.json().code, 1)
  res = await check('POST', '/mj/submit/{action}', { url: '/mj/submit/imagine', ...json({ prompt: 'x'.repeat(5000) }) }, 413, 'submit, too large', relay)
  t.equal(res.json().code, 'GW_ERR_BODY_TOO_LARGE')
  sim.faults.add({ route: 'imagine', kind: 'malformed', body: 'html', times: 1 })
  res = await check('POST', '/mj/submit/{action}', submit('imagine', { prompt: 'a fox' }), 502, 'submit, html answer', relay)
  t.equal(res.json().code, 'UPSTREAM_BAD_RESPONSE')
  sim.faults.add({ route: 'imagine', kind: 'hang', times: 1 })
  await check('POST', '/mj/submit/{action}', submit('imagine', { prompt: 'a fox' }), 504, 'submit, upstream hangs', relay)

  res = await check('GET', '/mj/image/{id}', { url: `/mj/image/${SEED_TASK_IDS.success}` }, 200, 'image', relay)
  t.match(res.headers['content-type'], /^image\//)
  await check('GET', '/mj/image/{id}', { url: '/mj/image/1700000000000995' }, 404, 'image, unknown task', relay)
  await check('GET', '/mj/image/{id}', { url: '/mj/image/bad!id' }, 400, 'image, bad id', relay)
  sim.faults.add({ route: 'image', kind: 'error', status: 403, times: 1 })
  await check('GET', '/mj/image/{id}', { url: `/mj/image/${SEED_TASK_IDS.success}` }, 403, 'image, upstream 403', relay)
  sim.faults.add({ route: 'image', kind: 'hang', times: 1 })
  await check('GET', '/mj/image/{id}', { url: `/mj/image/${SEED_TASK_IDS.success}` }, 504, 'image, upstream hangs', relay)

  // Nothing listening upstream: 502 on the relayed routes (they are never retried).
  await sim.close()
  res = await check('POST', '/mj/submit/{action}', submit('imagine', { prompt: 'a fox' }), 502, 'submit, upstream down', relay)
  t.equal(res.json().code, 'UPSTREAM_ERROR')
  await check('GET', '/mj/image/{id}', { url: `/mj/image/${SEED_TASK_IDS.success}` }, 502, 'image, upstream down', relay)
  await check('POST', '/mj/submit/{action}', submit('imagine', { prompt: 'a fox' }), 401, 'submit without a key', locked.app)
  await check('GET', '/mj/image/{id}', { url: `/mj/image/${SEED_TASK_IDS.success}` }, 401, 'image without a key', locked.app)

  t.same([...documentedResponses()].filter((r) => !covered.has(r)), [], 'every documented status was produced and checked')
})
