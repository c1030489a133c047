import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { REDACTED_PATHS } from '../../src/logging.js'
import { configFromEnv, normalizeConfig } from '../../src/config.js'
import { securityPolicy } from '../../src/security/policy.js'
import { setup, TEST_KEY } from '../helpers/gateway.js'

const CLIENT_KEYS = ['gw-client-key-alpha-S3CRET-0001', 'gw-client-key-bravo-S3CRET-0002']
const WRONG_KEY = 'gw-client-key-wrong-S3CRET-0003'
const TENANTS = ['sk-tenant-a-S3CRET-cometapi-0001', 'sk-tenant-b-S3CRET-cometapi-0002']
const METRICS_TOKEN = 'metrics-token-S3CRET-0001'

/** Every secret, and a distinctive slice of each, so a truncated copy is caught too. */
function needles (secrets: readonly string[]): string[] {
  return secrets.flatMap((secret) => [secret, secret.slice(4, 20)])
}

interface Capture { lines: string[], texts: string[] }

/** Log lines at trace level, with the gateway's own redaction paths (as src/app.ts configures production). */
function traceLogger (capture: Capture, redact: boolean): { level: 'trace', stream: Writable, redact?: { paths: string[], censor: string } } {
  const stream = new Writable({ write (chunk, _enc, done) { capture.lines.push(String(chunk)); done() } })
  return redact ? { level: 'trace', stream, redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' } } : { level: 'trace', stream }
}

async function record (capture: Capture, app: FastifyInstance, request: InjectOptions): Promise<void> {
  const res = await app.inject(request)
  capture.texts.push(`${request.method ?? 'GET'} ${request.url} → ${res.statusCode} ${JSON.stringify(res.headers)} ${res.body}`)
}

function assertClean (t: Test, capture: Capture, secrets: readonly string[]): void {
  t.ok(capture.lines.length > 10, `${capture.lines.length} log lines captured`)
  t.ok(capture.lines.some((line) => /"level":20/.test(line)), 'debug lines among them (upstream retries)')
  for (const needle of needles(secrets)) {
    const inLogs = capture.lines.filter((line) => line.includes(needle))
    t.same(inLogs, [], `no log line contains ${needle.slice(0, 8)}…`)
    const inBodies = capture.texts.filter((text) => text.includes(needle))
    t.same(inBodies, [], `no response contains ${needle.slice(0, 8)}…`)
  }
}

for (const redact of [true, false]) {
  const how = redact ? 'with the production redaction' : 'even without redaction paths'

  t.test(`key mode: COMETAPI_KEY, client keys and a metrics token never leak, ${how}`, async (t) => {
    const capture: Capture = { lines: [], texts: [] }
    const { app, upstream } = await setup(t, {
      security: { apiKeys: CLIENT_KEYS.join(','), rateLimitMax: 1000 },
      metrics: { token: METRICS_TOKEN },
      upstream: { retries: 1 }
    }, { logger: traceLogger(capture, redact) })
    upstream.add({ id: '1' }, { id: '2', status: 'SUCCESS', progress: '100%' })

    const ok = { 'x-api-key': CLIENT_KEYS[0]! }
    const bearer = { authorization: `Bearer ${CLIENT_KEYS[1]!}` }
    await record(capture, app, { url: '/v1/tasks/1', headers: ok })
    await record(capture, app, { url: '/v1/tasks?ids=1,2,3', headers: bearer })
    await record(capture, app, { method: 'POST', url: '/graphql', headers: bearer, payload: { query: '{ tasks(ids: ["1", "9"]) { id status } }' } })
    await record(capture, app, { method: 'POST', url: '/mj/task/list-by-condition', headers: ok, payload: { ids: ['2'] } })
    // Failures: wrong and missing keys, malformed requests.
    await record(capture, app, { url: '/v1/tasks/1', headers: { 'x-api-key': WRONG_KEY } })
    await record(capture, app, { url: '/v1/tasks/1', headers: { authorization: `Bearer ${WRONG_KEY}` } })
    await record(capture, app, { method: 'POST', url: '/graphql', headers: { authorization: `Bearer ${WRONG_KEY}` }, payload: { query: '{ task(id: "1") { id } }' } })
    await record(capture, app, { method: 'POST', url: '/v1/tasks', headers: { ...ok, 'content-type': 'application/json' }, payload: '{"ids": [' })
    await record(capture, app, { url: '/v1/tasks/bad%20id', headers: ok })
    // Upstream failing: a 503 (retried, logged at debug) then a 500, a 401, a non-JSON body.
    upstream.script({ kind: 'status', status: 503 }, { kind: 'status', status: 500 })
    await record(capture, app, { url: '/v1/tasks/100', headers: ok })
    upstream.script({ kind: 'status', status: 401, body: JSON.stringify({ description: 'invalid token', type: 'auth_error', code: 401 }) })
    await record(capture, app, { method: 'POST', url: '/graphql', headers: ok, payload: { query: '{ task(id: "101") { id } }' } })
    upstream.script({ kind: 'raw', body: '<html>oops</html>', contentType: 'text/html' })
    await record(capture, app, { url: '/v1/tasks/102', headers: ok })
    await record(capture, app, { method: 'POST', url: '/mj/submit/imagine', headers: ok, payload: { prompt: 'a cat' } })
    // Metrics: wrong token, then the real one; the scrape text is checked too.
    await record(capture, app, { url: '/metrics', headers: { ...ok, authorization: `Bearer ${WRONG_KEY}` } })
    await record(capture, app, { url: '/metrics', headers: { 'x-api-key': CLIENT_KEYS[0]!, authorization: `Bearer ${METRICS_TOKEN}` } })
    t.ok(capture.texts.at(-1)!.includes('gateway_upstream_calls_total'), 'the scrape was captured')

    t.equal(app.log.level, 'trace')
    t.ok(upstream.calls.length > 0)
    for (const call of upstream.calls) t.equal(call.authorization, `Bearer ${TEST_KEY}`, 'upstream got the gateway key, never a client key')
    assertClean(t, capture, [TEST_KEY, ...CLIENT_KEYS, WRONG_KEY, METRICS_TOKEN])
  })

  t.test(`pass-through mode: tenants' CometAPI keys never leak, ${how}`, async (t) => {
    const capture: Capture = { lines: [], texts: [] }
    const { app, upstream } = await setup(t, {
      upstream: { auth: 'passthrough', key: undefined, retries: 1 },
      security: { apiKeys: CLIENT_KEYS[0]!, rateLimitMax: 1000 }
    }, { logger: traceLogger(capture, redact) })
    upstream.add({ id: '1' }, { id: '2' })
    upstream.owners.set('1', TENANTS[0]!)
    const as = (tenant: string): Record<string, string> => ({ 'x-api-key': CLIENT_KEYS[0]!, authorization: `Bearer ${tenant}` })

    await Promise.all(TENANTS.map(async (tenant) => await record(capture, app, { url: '/v1/tasks/1', headers: as(tenant) })))
    await record(capture, app, { method: 'POST', url: '/graphql', headers: as(TENANTS[1]!), payload: { query: '{ tasks(ids: ["1", "2"]) { id } }' } })
    await record(capture, app, { method: 'POST', url: '/mj/task/list-by-condition', headers: as(TENANTS[0]!), payload: { ids: ['1', '2'] } })
    await record(capture, app, { url: '/v1/tasks/1', headers: { 'x-api-key': CLIENT_KEYS[0]! } })
    await record(capture, app, { url: '/v1/tasks/1', headers: { authorization: `Bearer ${TENANTS[0]!}` } })
    upstream.script({ kind: 'status', status: 503 }, { kind: 'status', status: 500 })
    await record(capture, app, { url: '/v1/tasks/200', headers: as(TENANTS[0]!) })
    upstream.script({ kind: 'status', status: 401, body: JSON.stringify({ description: 'invalid token', type: 'auth_error', code: 401 }) })
    await record(capture, app, { url: '/v1/tasks/201', headers: as(TENANTS[1]!) })
    await record(capture, app, { url: '/metrics', headers: { 'x-api-key': CLIENT_KEYS[0]! } })

    t.equal(app.log.level, 'trace')
    t.same(new Set(upstream.calls.map((c) => c.authorization)), new Set(TENANTS.map((k) => `Bearer ${k}`)), 'each tenant\'s own key went upstream')
    assertClean(t, capture, [...TENANTS, ...CLIENT_KEYS])
  })
}

t.test('configuration errors never echo a secret', async (t) => {
  const tooShort = 'S3CRET-short'
  const messages: string[] = []
  for (const attempt of [
    () => securityPolicy(normalizeConfig({ security: { apiKeys: `${CLIENT_KEYS[0]!},${tooShort}` } })),
    () => securityPolicy(normalizeConfig({ security: { apiKeys: `${CLIENT_KEYS[0]!} with space` } })),
    () => securityPolicy(normalizeConfig(configFromEnv({ GATEWAY_API_KEYS: `${tooShort},${CLIENT_KEYS[1]!}` }))),
    () => normalizeConfig({ security: { apiKeys: 42 as unknown as string } }),
    () => normalizeConfig({ upstream: { auth: 'passthrough', key: TEST_KEY } })
  ]) {
    try { attempt(); t.fail('should throw') } catch (err) { messages.push((err as Error).message) }
  }
  for (const message of messages) {
    for (const needle of needles([...CLIENT_KEYS, TEST_KEY])) t.notOk(message.includes(needle), message)
    t.notOk(message.includes(tooShort), message)
  }
})

t.test('an upstream error that echoes the credential it was sent is not passed on', async (t) => {
  const capture: Capture = { lines: [], texts: [] }
  const { app, upstream } = await setup(t, {}, { logger: traceLogger(capture, true) })
  upstream.script({ kind: 'status', status: 401, body: JSON.stringify({ description: `invalid token ${TEST_KEY}`, type: 'auth_error', code: 401 }) })
  await record(capture, app, { url: '/v1/tasks/300' })
  for (const needle of needles([TEST_KEY])) {
    t.same(capture.texts.filter((text) => text.includes(needle)), [], 'not in the response')
    t.same(capture.lines.filter((line) => line.includes(needle)), [], 'not in the logs')
  }
})
