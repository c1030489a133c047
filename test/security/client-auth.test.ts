import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import WebSocket from 'ws'
import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { buildApp } from '../../src/app.js'
import { configFromEnv, normalizeConfig } from '../../src/config.js'
import { parseClientKeys } from '../../src/security/policy.js'
import { setup, TEST_KEY } from '../helpers/gateway.js'

const KEY_A = 'gw-client-key-alpha-0123456789'
const KEY_B = 'gw-client-key-bravo-9876543210'

/** One request per route family: GraphQL, REST mirror, drop-in, relayed upstream routes, pages, docs, metrics, live updates. */
const PROTECTED: ReadonlyArray<{ family: string, request: InjectOptions }> = [
  { family: 'graphql POST', request: { method: 'POST', url: '/graphql', payload: { query: '{ task(id: "1") { id } }' } } },
  { family: 'graphql GET', request: { method: 'GET', url: '/graphql?query=' + encodeURIComponent('{ task(id: "1") { id } }') } },
  { family: 'rest list', request: { method: 'GET', url: '/v1/tasks?ids=1,2' } },
  { family: 'rest post', request: { method: 'POST', url: '/v1/tasks', payload: { ids: ['1'] } } },
  { family: 'rest one', request: { method: 'GET', url: '/v1/tasks/1' } },
  { family: 'drop-in list', request: { method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: ['1'] } } },
  { family: 'drop-in fetch', request: { method: 'GET', url: '/mj/task/1/fetch' } },
  { family: 'relay submit', request: { method: 'POST', url: '/mj/submit/imagine', payload: { prompt: 'a cat' } } },
  { family: 'relay image', request: { method: 'GET', url: '/mj/image/1' } },
  { family: 'docs page', request: { method: 'GET', url: '/docs' } },
  { family: 'docs spec', request: { method: 'GET', url: '/openapi.yaml' } },
  { family: 'graphiql page', request: { method: 'GET', url: '/graphiql' } },
  { family: 'dashboard', request: { method: 'GET', url: '/' } },
  { family: 'metrics', request: { method: 'GET', url: '/metrics' } },
  { family: 'sse stream', request: { method: 'GET', url: '/v1/tasks/stream?ids=1' } },
  { family: 'unknown route', request: { method: 'GET', url: '/nowhere' } }
]

function withHeaders (request: InjectOptions, headers: Record<string, string>): InjectOptions {
  return { ...request, headers: { ...(request.headers as Record<string, string> | undefined), ...headers } }
}

function assertUnauthenticated (t: Test, res: Awaited<ReturnType<FastifyInstance['inject']>>, label: string): void {
  t.equal(res.statusCode, 401, `${label}: 401`)
  t.match(res.headers['content-type'], /json/, `${label}: JSON`)
  t.match(res.headers['www-authenticate'], /^Bearer /, `${label}: WWW-Authenticate`)
  const body = res.json()
  if (label.startsWith('graphql')) {
    t.match(body, { errors: [{ message: String, extensions: { code: 'UNAUTHENTICATED' } }] }, `${label}: GraphQL error`)
    t.notOk('data' in body && body.data !== null, `${label}: no data`)
  } else {
    t.match(body, { statusCode: 401, code: 'UNAUTHENTICATED', error: 'Unauthorized', message: String }, `${label}: gateway error body`)
  }
}

t.test('GATEWAY_API_KEYS: every route family but /healthz and /readyz wants a key', async (t) => {
  const { app, upstream } = await setup(t, { security: { apiKeys: `${KEY_A}, ${KEY_B}` } })
  upstream.add({ id: '1' })

  for (const { family, request } of PROTECTED) {
    assertUnauthenticated(t, await app.inject(request), `${family} without a key`)
    assertUnauthenticated(t, await app.inject(withHeaders(request, { 'x-api-key': 'gw-client-key-wrong-000000000' })), `${family} with a wrong key`)
    assertUnauthenticated(t, await app.inject(withHeaders(request, { authorization: `Bearer ${KEY_A}x` })), `${family} with a longer key`)
    assertUnauthenticated(t, await app.inject(withHeaders(request, { authorization: `Bearer ${KEY_A.slice(0, -1)}` })), `${family} with a prefix of a key`)
  }
  t.equal(upstream.calls.length, 0, 'no unauthenticated request reached upstream')

  for (const url of ['/healthz', '/readyz']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, `${url} stays open`)
  }
})

t.test('a valid key in Authorization: Bearer or x-api-key opens every route family', async (t) => {
  const { app, upstream } = await setup(t, { security: { apiKeys: `${KEY_A},${KEY_B}` } })
  upstream.add({ id: '1' })
  for (const { family, request } of PROTECTED) {
    if (family === 'sse stream' || family === 'unknown route') continue
    for (const headers of [{ authorization: `Bearer ${KEY_A}` }, { 'x-api-key': KEY_B }] as Array<Record<string, string>>) {
      const res = await app.inject(withHeaders(request, headers))
      t.not(res.statusCode, 401, `${family} with ${Object.keys(headers)[0]}`)
      t.ok(res.statusCode < 500 || family.startsWith('relay'), `${family}: ${res.statusCode}`)
    }
  }
  const res = await app.inject({ url: '/v1/tasks/1', headers: { 'x-api-key': KEY_A } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().id, '1')
  // Upstream still gets the gateway's own key, never the client's.
  t.ok(upstream.calls.length > 0)
  for (const call of upstream.calls) t.equal(call.authorization, `Bearer ${TEST_KEY}`)

  const gql = await app.inject({ method: 'POST', url: '/graphql', headers: { authorization: `bearer ${KEY_B}` }, payload: { query: '{ task(id: "1") { id status } }' } })
  t.same(gql.json(), { data: { task: { id: '1', status: 'IN_PROGRESS' } } }, 'the scheme is case-insensitive')
})

t.test('GraphQL subscriptions: the WebSocket upgrade wants the key too', async (t) => {
  const { app } = await setup(t, { security: { apiKeys: KEY_A } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/graphql`
  const connect = async (headers: Record<string, string>): Promise<string> => await new Promise((resolve) => {
    const ws = new WebSocket(url, 'graphql-transport-ws', { headers })
    ws.on('open', () => { ws.close(); resolve('open') })
    ws.on('unexpected-response', (_req, res) => { resolve(`HTTP ${res.statusCode ?? 0}`) })
    ws.on('error', (err) => { resolve(`error ${err.message}`) })
  })
  t.equal(await connect({}), 'HTTP 401')
  t.equal(await connect({ 'x-api-key': 'gw-client-key-wrong-000000000' }), 'HTTP 401')
  t.equal(await connect({ 'x-api-key': KEY_A }), 'open')
})

t.test('without GATEWAY_API_KEYS the gateway is open and ignores client headers', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1' })
  t.equal((await app.inject({ url: '/v1/tasks/1' })).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/tasks/1', headers: { 'x-api-key': 'anything-at-all-000000' } })).statusCode, 200)
})

t.test('with pass-through and client keys, the client key goes in x-api-key and Authorization carries the CometAPI key', async (t) => {
  const { app, upstream } = await setup(t, { security: { apiKeys: KEY_A }, upstream: { auth: 'passthrough', key: undefined } })
  upstream.add({ id: '1' })
  const tenant = 'sk-tenant-cometapi-key-1111'

  // A client key in Authorization is not accepted here: that header is the tenant's CometAPI key.
  const res1 = await app.inject({ url: '/v1/tasks/1', headers: { authorization: `Bearer ${KEY_A}` } })
  assertUnauthenticated(t, res1, 'client key as bearer')
  t.match(res1.json().message, /x-api-key/)

  const res2 = await app.inject({ url: '/v1/tasks/1', headers: { 'x-api-key': KEY_A } })
  assertUnauthenticated(t, res2, 'client key without a CometAPI key')
  t.match(res2.json().message, /CometAPI key/)

  const res3 = await app.inject({ url: '/v1/tasks/1', headers: { 'x-api-key': KEY_A, authorization: `Bearer ${tenant}` } })
  t.equal(res3.statusCode, 200)
  t.same(upstream.calls.map((c) => c.authorization), [`Bearer ${tenant}`])

  assertUnauthenticated(t, await app.inject({ url: '/v1/tasks/1', headers: { authorization: `Bearer ${tenant}` } }), 'CometAPI key without a client key')
})

t.test('pass-through: every data route refuses a request without a bearer credential, the same way', async (t) => {
  const { app, upstream } = await setup(t, { upstream: { auth: 'passthrough', key: undefined } })
  for (const { family, request } of PROTECTED) {
    if (!/^(graphql|rest|drop-in|relay|sse)/.test(family)) continue
    const res = await app.inject(request)
    assertUnauthenticated(t, res, family)
    t.match(res.json().message ?? res.json().errors[0].message, /UPSTREAM_AUTH=passthrough/, `${family}: says why`)
  }
  t.equal(upstream.calls.length, 0)
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200)
  t.equal((await app.inject({ url: '/docs' })).statusCode, 200, 'pages need no CometAPI key')
})

t.test('production without client keys logs a loud warning at start-up; with keys it does not', async (t) => {
  const logs = async (options: Parameters<typeof buildApp>[0]): Promise<Array<{ level: number, msg: string }>> => {
    const lines: Array<{ level: number, msg: string }> = []
    const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
    const app = await buildApp(options, { logger: { level: 'info', stream } })
    await app.close()
    return lines
  }
  const upstream = { baseUrl: 'http://127.0.0.1:9', key: TEST_KEY }
  const bare = await logs({ production: true, upstream })
  const warning = bare.find((line) => /GATEWAY_API_KEYS/.test(line.msg))
  t.ok(warning, 'warned')
  t.equal(warning?.level, 40, 'at warn level')
  t.match(warning?.msg, /SECURITY WARNING/)

  t.notOk((await logs({ production: true, upstream, security: { apiKeys: KEY_A } })).some((line) => /GATEWAY_API_KEYS/.test(line.msg)), 'no warning with keys')
  t.notOk((await logs({ production: false, upstream })).some((line) => /GATEWAY_API_KEYS/.test(line.msg)), 'no warning outside production')
})

t.test('GATEWAY_API_KEYS is read from the environment; bad keys stop start-up without being echoed', async (t) => {
  const config = normalizeConfig(configFromEnv({ GATEWAY_API_KEYS: ` ${KEY_A} ,${KEY_B}` }))
  t.same(parseClientKeys(config.security.apiKeys), [KEY_A, KEY_B], 'blanks around commas are dropped')
  const err = (() => { try { parseClientKeys(`${KEY_A},tiny-key`) } catch (err) { return err as Error } })()
  t.match(err?.message, /key #2 is shorter than 16 characters/)
  t.notMatch(err?.message, /tiny-key|alpha/, 'no key in the message')
  t.throws(() => parseClientKeys(`${KEY_A},,${KEY_B}`), /key #2/)
  t.throws(() => parseClientKeys('key with spaces in it 123'), /key #1 has characters outside visible ASCII/)
  await t.rejects(buildApp({ security: { apiKeys: 'tiny' } }, { logger: false }), /GATEWAY_API_KEYS/, 'refused at start-up')
})
