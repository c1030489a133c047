import t from 'tap'
import { partitionOf } from '../../src/core/scope.js'
import { setup } from '../helpers/gateway.js'

const TENANT_A = 'sk-tenant-a-cometapi-0000000001'
const TENANT_B = 'sk-tenant-b-cometapi-0000000002'
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })

const passthrough = { upstream: { auth: 'passthrough' as const, key: undefined } }

t.test('two tenants asking for one id at once: two upstream calls, each with its own credential, each answer its own', async (t) => {
  const { app, upstream } = await setup(t, passthrough)
  upstream.add({ id: '1001', status: 'SUCCESS', progress: '100%', prompt: 'tenant A only' })
  upstream.owners.set('1001', TENANT_A)

  upstream.hold()
  const requests = [
    app.inject({ url: '/v1/tasks/1001', headers: bearer(TENANT_A) }),
    app.inject({ url: '/v1/tasks/1001', headers: bearer(TENANT_B) })
  ]
  await upstream.waitForCalls(2)
  upstream.release()
  const [a, b] = await Promise.all(requests)

  t.equal(upstream.calls.length, 2, 'one call per tenant: lanes are not shared')
  t.same(upstream.calls.map((c) => c.authorization).sort(), [`Bearer ${TENANT_A}`, `Bearer ${TENANT_B}`].sort())
  for (const call of upstream.calls) t.same(call.ids, ['1001'])

  t.equal(a!.statusCode, 200)
  t.match(a!.json(), { id: '1001', prompt: 'tenant A only' })
  t.equal(b!.statusCode, 404, 'upstream hides the task from B, and so does the gateway')
  t.notMatch(b!.body, /tenant A only/)

  // B again: never A's cached copy. Whatever B gets comes from B's own lookup or B's own cached "unknown".
  const before = upstream.calls.length
  const b2 = await app.inject({ url: '/v1/tasks/1001', headers: bearer(TENANT_B) })
  t.equal(b2.statusCode, 404)
  t.notMatch(b2.body, /tenant A only/)
  for (const call of upstream.calls.slice(before)) t.equal(call.authorization, `Bearer ${TENANT_B}`, 'any new call carries B\'s credential')

  // A again: its own cached copy, no new call.
  const callsNow = upstream.calls.length
  const a2 = await app.inject({ url: '/v1/tasks/1001', headers: bearer(TENANT_A) })
  t.equal(a2.statusCode, 200)
  t.equal(a2.headers['x-cache'], 'hit')
  t.equal(upstream.calls.length, callsNow)

  // The cache is keyed by a digest of each credential, never the credential itself.
  const { cache } = app.gateway
  t.equal(cache.get(partitionOf(TENANT_A), '1001')?.stored?.task.prompt, 'tenant A only')
  t.not(cache.get(partitionOf(TENANT_B), '1001')?.stored?.task.prompt, 'tenant A only')
  t.equal(cache.get(TENANT_A, '1001'), undefined)
  t.notMatch(partitionOf(TENANT_A), TENANT_A)
})

t.test('many concurrent lookups from two tenants on every surface: batched per tenant, never mixed', async (t) => {
  const { app, upstream } = await setup(t, passthrough)
  upstream.add({ id: '2001', prompt: 'A secret' }, { id: '2002', prompt: 'B secret' }, { id: '2003', prompt: 'shared' })
  upstream.owners.set('2001', TENANT_A)
  upstream.owners.set('2002', TENANT_B)

  upstream.hold()
  const surfaces = (key: string) => [
    app.inject({ url: '/v1/tasks?ids=2001,2002,2003', headers: bearer(key) }),
    app.inject({ method: 'POST', url: '/v1/tasks', headers: bearer(key), payload: { ids: ['2002', '2001'] } }),
    app.inject({ method: 'POST', url: '/mj/task/list-by-condition', headers: bearer(key), payload: { ids: ['2001', '2002', '2003'] } }),
    app.inject({ method: 'POST', url: '/graphql', headers: bearer(key), payload: { query: '{ tasks(ids: ["2001", "2002", "2003"]) { id prompt } }' } })
  ]
  const pending = [...surfaces(TENANT_A), ...surfaces(TENANT_B), ...surfaces(TENANT_A), ...surfaces(TENANT_B)]
  await upstream.waitForCalls(2)
  // Let every request reach the batcher before the answers arrive.
  await new Promise((resolve) => setTimeout(resolve, 50))
  upstream.release()
  const results = await Promise.all(pending)

  const byCredential = new Map<string | undefined, number>()
  for (const call of upstream.calls) byCredential.set(call.authorization, (byCredential.get(call.authorization) ?? 0) + 1)
  t.same([...byCredential.keys()].sort(), [`Bearer ${TENANT_A}`, `Bearer ${TENANT_B}`].sort(), 'only the two tenants\' credentials reached upstream')
  t.ok(upstream.calls.length <= 4, `batched within each tenant (${upstream.calls.length} calls for 16 requests)`)

  for (let i = 0; i < results.length; i++) {
    const tenant = Math.floor(i / 4) % 2 === 0 ? 'A' : 'B'
    const body = results[i]!.body
    t.equal(results[i]!.statusCode, 200, `request ${i}`)
    if (tenant === 'A') t.notMatch(body, /B secret/, `request ${i} (A) never sees B's task`)
    else t.notMatch(body, /A secret/, `request ${i} (B) never sees A's task`)
  }
  t.same(results[0]!.json().map((task: { id: string } | null) => task?.id ?? null), ['2001', null, '2003'], 'A: its own task and the shared one')
  t.same(results[4]!.json().map((task: { id: string } | null) => task?.id ?? null), [null, '2002', '2003'], 'B: its own task and the shared one')
  t.same(results[7]!.json(), { data: { tasks: [null, { id: '2002', prompt: 'B secret' }, { id: '2003', prompt: 'shared' }] } })
})

t.test('pass-through: a request without a bearer credential is refused before any lookup', async (t) => {
  const { app, upstream } = await setup(t, passthrough)
  const res = await app.inject({ url: '/v1/tasks/1' })
  t.equal(res.statusCode, 401)
  t.match(res.json(), { code: 'UNAUTHENTICATED' })
  const basic = await app.inject({ url: '/v1/tasks/1', headers: { authorization: 'Basic dXNlcjpwYXNz' } })
  t.equal(basic.statusCode, 401, 'only a bearer credential counts')
  t.equal(upstream.calls.length, 0)
})

/** Log lines as parsed JSON, from a pino logger writing to memory. */
function captureLogs (): { logger: { level: string, stream: { write (line: string): void } }, entries: () => Array<Record<string, any>> } {
  const lines: string[] = []
  return { logger: { level: 'info', stream: { write (line: string) { lines.push(line) } } }, entries: () => lines.map((l) => JSON.parse(l)) }
}

t.test('pass-through: upstream refusing a tenant\'s own key is that tenant\'s 401 or 403 on REST, GraphQL and the drop-in routes, logged at info', async (t) => {
  const logs = captureLogs()
  const { app, upstream } = await setup(t, passthrough, { logger: logs.logger })
  upstream.add({ id: '3001' })
  const cases = [
    { status: 401, code: 'UPSTREAM_UNAUTHORIZED', message: 'Upstream refused your credential: HTTP 401: invalid token', error: 'Unauthorized' },
    { status: 403, code: 'UPSTREAM_FORBIDDEN', message: 'Upstream refused access with your credential: HTTP 403: invalid token', error: 'Forbidden' }
  ]
  for (const { status, code, message, error } of cases) {
    const refusal = { kind: 'status' as const, status, body: JSON.stringify({ description: 'invalid token', type: 'new_api_error', code: '' }) }
    const surfaces = [
      { method: 'GET' as const, url: '/v1/tasks/3001' },
      { method: 'GET' as const, url: '/v1/tasks?ids=3001' },
      { method: 'POST' as const, url: '/v1/tasks', payload: { ids: ['3001'] } },
      { method: 'POST' as const, url: '/mj/task/list-by-condition', payload: { ids: ['3001'] } },
      { method: 'GET' as const, url: '/mj/task/3001/fetch' }
    ]
    for (const request of surfaces) {
      upstream.script(refusal)
      const res = await app.inject({ ...request, headers: bearer(TENANT_A) })
      t.equal(res.statusCode, status, `${request.method} ${request.url}: ${status}`)
      t.strictSame(res.json(), { statusCode: status, code, error, message }, `${request.method} ${request.url}: coded`)
      t.equal(res.headers['www-authenticate'], status === 401 ? 'Bearer realm="cometapi", error="invalid_token"' : undefined)
    }
    upstream.script(refusal)
    const gql = await app.inject({ method: 'POST', url: '/graphql', headers: bearer(TENANT_A), payload: { query: '{ tasks(ids: ["3001"]) { id } }' } })
    t.strictSame(gql.json().data, { tasks: [null] })
    t.strictSame(gql.json().errors.map((e: { message: string, extensions: unknown }) => [e.message, e.extensions]), [[message, { code }]], `GraphQL: ${code}`)
  }
  t.equal(upstream.calls.length, 12, 'one call per lookup: a refusal is not retried')
  t.equal(app.gateway.breaker.state, 'closed')
  const refusals = logs.entries().filter((e) => e.msg === 'upstream refused the client\'s credential')
  t.equal(refusals.length, 10, 'each REST and drop-in refusal is logged once')
  t.ok(refusals.every((e) => e.level === 30), 'at info')
  t.strictSame(logs.entries().filter((e) => e.level >= 40), [], 'nothing at warn or above: it is the client\'s business')
})

t.test('pass-through: upstream rate limiting a tenant\'s own key is that tenant\'s 429 with Retry-After', async (t) => {
  const { app, upstream, sleeps } = await setup(t, { ...passthrough, upstream: { ...passthrough.upstream, retries: 1 } })
  upstream.add({ id: '4001' })
  upstream.script({ kind: 'status', status: 429, headers: { 'retry-after': '30' } })
  const res = await app.inject({ url: '/v1/tasks/4001', headers: bearer(TENANT_A) })
  t.equal(res.statusCode, 429)
  t.strictSame(res.json(), { statusCode: 429, code: 'UPSTREAM_CREDENTIAL_RATE_LIMITED', error: 'Too Many Requests', message: 'Upstream is rate limiting your credential: HTTP 429: scripted failure' })
  t.equal(res.headers['retry-after'], '30', 'upstream\'s own wait, past the cap: not waited out here')
  t.strictSame(sleeps, [])

  // No Retry-After from upstream: retried once, then the client is still told to wait.
  upstream.script({ kind: 'status', status: 429 }, { kind: 'status', status: 429 })
  const again = await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', headers: bearer(TENANT_A), payload: { ids: ['4001'] } })
  t.equal(again.statusCode, 429)
  t.equal(again.json().code, 'UPSTREAM_CREDENTIAL_RATE_LIMITED')
  t.equal(again.headers['retry-after'], '1')
  t.equal(upstream.calls.length, 3)
  t.equal(app.gateway.breaker.state, 'closed', 'one tenant\'s limit opens no circuit for the others')
})

t.test('key mode: upstream refusing the gateway\'s own key is the operator\'s outage, a 502 that names COMETAPI_KEY', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '5001' })
  for (const status of [401, 403]) {
    upstream.script({ kind: 'status', status, body: JSON.stringify({ description: 'invalid token', type: 'new_api_error', code: '' }) })
    const res = await app.inject({ url: '/v1/tasks/5001' })
    t.equal(res.statusCode, 502)
    t.strictSame(res.json(), { statusCode: 502, code: 'UPSTREAM_KEY_REJECTED', error: 'Bad Gateway', message: `Upstream refused the gateway's credential (COMETAPI_KEY): HTTP ${status}: invalid token` })
    t.equal(res.headers['www-authenticate'], undefined, 'the client\'s credentials are not the problem')
  }
  upstream.script({ kind: 'status', status: 429 }, { kind: 'status', status: 429 }, { kind: 'status', status: 429 })
  t.equal((await app.inject({ url: '/v1/tasks/5001' })).json().code, 'UPSTREAM_RATE_LIMITED', 'a 429 on the gateway\'s key stays a 503')
})
