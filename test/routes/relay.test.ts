import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { InjectOptions } from 'fastify'
import { buildApp } from '../../src/app.js'
import { normalizeConfig } from '../../src/config.js'
import { gatewayOnSimulator, submitCalls } from '../helpers/submits.js'
import { ManualClock } from '../helpers/gateway.js'

const buildDefaults = () => normalizeConfig().limits

t.test('relays a submit to upstream and the new task is readable at once through the batcher', async (t) => {
  const { app, sim, clock } = await gatewayOnSimulator(t)
  // An unknown id is remembered as unknown for a moment...
  const before = await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: ['1750000000000999'] } })
  t.same(before.json(), [])

  const submit = await app.inject({ method: 'POST', url: '/mj/submit/imagine', payload: { prompt: 'a red fox in snow', state: 'mine' } })
  t.equal(submit.statusCode, 200)
  const body = submit.json()
  t.match(body, { code: 1, description: String, result: /^\d+$/ })
  t.equal(sim.allCalls.filter((c) => c.route === 'imagine').length, 1, 'one submit reached upstream')

  clock.advance(60_000)
  const task = await app.inject(`/v1/tasks/${body.result}`)
  t.equal(task.statusCode, 200)
  t.match(task.json(), { id: body.result, prompt: 'a red fox in snow', state: 'mine', status: 'SUCCESS' })
  t.same(sim.calls.at(-1)!.ids, [body.result], 'read through list-by-condition')
})

t.test('passes upstream refusals through with upstream\'s status and body', async (t) => {
  const { app } = await gatewayOnSimulator(t)
  const banned = await app.inject({ method: 'POST', url: '/mj/submit/imagine', payload: { prompt: 'something banned' } })
  t.equal(banned.statusCode, 200)
  t.equal(banned.json().code, 24)
  const noTask = await app.inject({ method: 'POST', url: '/mj/submit/action', payload: { taskId: '1', customId: 'MJ::JOB::upsample::1::x' } })
  t.equal(noTask.statusCode, 400)
  t.match(noTask.json(), { type: 'upstream_error', code: 4 })
  const badAction = await app.inject({ method: 'POST', url: '/mj/submit/..%2Fadmin', payload: {} })
  t.equal(badAction.statusCode, 400)
  t.equal(badAction.json().code, 'GW_ERR_BAD_REQUEST')
})

t.test('a submit has its own body bound, SUBMIT_BODY_LIMIT_BYTES, on the relay and POST /graphql: images past BODY_LIMIT_BYTES go through, every other route keeps BODY_LIMIT_BYTES', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t, { limits: { submitBodyLimitBytes: 4 << 20 } })
  t.equal(app.gateway.config.limits.bodyLimitBytes, 1 << 20, 'the default body bound')
  t.equal(buildDefaults().submitBodyLimitBytes, 16 << 20, 'the default submit bound')

  // Three images of 768 KiB each, base64: about 3 MiB, three times BODY_LIMIT_BYTES.
  const image = `data:image/png;base64,${Buffer.alloc(768 << 10, 7).toString('base64')}`
  const payload = JSON.stringify({ prompt: 'a fox, blended', base64Array: [image, image, image] })
  t.ok(payload.length > 3 * (1 << 20), `a ${payload.length}-byte submit`)
  const res = await app.inject({ method: 'POST', url: '/mj/submit/imagine', headers: { 'content-type': 'application/json' }, payload })
  t.equal(res.statusCode, 200)
  t.equal(res.json().code, 1, 'relayed and accepted upstream')
  const relayed = sim.allCalls.filter((c) => c.route === 'imagine')
  t.equal(relayed.length, 1, 'one submit reached upstream')

  const over = JSON.stringify({ prompt: 'too much', base64Array: [image, image, image, image, image, image] })
  const big = await app.inject({ method: 'POST', url: '/mj/submit/imagine', headers: { 'content-type': 'application/json' }, payload: over })
  t.equal(big.statusCode, 413)
  t.strictSame(big.json(), { statusCode: 413, code: 'GW_ERR_BODY_TOO_LARGE', error: 'Payload Too Large', message: `Request body is larger than this route's limit of ${4 << 20} bytes` })
  t.equal(sim.allCalls.filter((c) => c.route === 'imagine').length, 1, 'nothing more reached upstream')

  // Mutations carry the same images: POST /graphql has the relay's bound.
  const mutation = (input: unknown): string => JSON.stringify({ query: 'mutation ($input: ImagineInput!) { imagine(input: $input) { code } }', variables: { input } })
  const viaGraphQL = await app.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' }, payload: mutation({ prompt: 'a fox, blended', base64Array: [image, image, image] }) })
  t.equal(viaGraphQL.statusCode, 200)
  t.strictSame(viaGraphQL.json(), { data: { imagine: { code: 1 } } }, 'the mutation went through')
  const bigMutation = await app.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' }, payload: mutation({ prompt: 'too much', base64Array: [image, image, image, image, image, image] }) })
  t.equal(bigMutation.statusCode, 413)
  t.equal(bigMutation.json().errors[0].extensions.code, 'GW_ERR_BODY_TOO_LARGE')
  t.equal(sim.allCalls.filter((c) => c.route === 'imagine').length, 2, 'the relayed submit and the mutation, nothing more')

  const read = await app.inject({ method: 'POST', url: '/v1/tasks', headers: { 'content-type': 'application/json' }, payload })
  t.equal(read.statusCode, 413, 'the same body on a read route is over BODY_LIMIT_BYTES')
  t.equal(read.json().message, `Request body is larger than this route's limit of ${1 << 20} bytes`)
})

t.test('relays task images from upstream', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  const res = await app.inject(`/mj/image/${sim.seedIds.success}`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^image\/svg\+xml/)
  t.match(res.body, /<svg/)
  const missing = await app.inject('/mj/image/1234')
  t.equal(missing.statusCode, 404)
})

/** An upstream stand-in for the relayed routes: a slow image and a submit that echoes the key it was sent. */
async function relayUpstream (t: Test): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url === '/mj/image/slow') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(CHUNK.length * 6) })
      let sent = 0
      const timer = setInterval(() => {
        res.write(CHUNK)
        if (++sent === 6) { clearInterval(timer); res.end() }
      }, 100)
      return
    }
    if (req.url === '/mj/submit/imagine') {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ description: `invalid token ${String(req.headers.authorization).slice(7)}`, type: 'upstream_error', code: 4 }))
      return
    }
    const failure = FAILURES[req.url ?? '']
    if (failure !== undefined) {
      res.writeHead(failure.status, failure.headers).end(failure.body)
      return
    }
    if (req.url === '/mj/submit/blend') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ code: 1, description: 'x'.repeat(4096), result: '1' }))
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
const CHUNK = Buffer.alloc(5000, 7)

/** Upstream failing, rate limiting or unavailable, by path. */
const FAILURES: Record<string, { status: number, headers: Record<string, string>, body: string }> = {
  '/mj/submit/describe': { status: 500, headers: { 'content-type': 'application/json' }, body: '{"description":"internal error ","type":"upstream_error","code":4}' },
  '/mj/submit/shorten': { status: 502, headers: { 'content-type': 'text/html' }, body: '<html>Bad Gateway</html>' },
  '/mj/submit/modal': { status: 503, headers: { 'content-type': 'application/json', 'retry-after': '7' }, body: '{"description":"maintenance ","type":"upstream_error","code":4}' },
  '/mj/submit/action': { status: 429, headers: { 'content-type': 'application/json', 'retry-after': '30' }, body: '{"description":"channel rate limited ","type":"upstream_error","code":4}' },
  '/mj/image/broken': { status: 500, headers: { 'content-type': 'text/plain' }, body: 'oops' },
  '/mj/image/busy': { status: 503, headers: { 'content-type': 'text/plain', 'retry-after': '9' }, body: 'busy' },
  '/mj/image/limited': { status: 429, headers: { 'content-type': 'application/json', 'retry-after': '11' }, body: '{"description":"slow down ","type":"upstream_error","code":4}' }
}

t.test('an image that takes longer than UPSTREAM_TIMEOUT_MS to stream still arrives whole', async (t) => {
  const app = await buildApp({ upstream: { baseUrl: await relayUpstream(t), key: 'sk-relay-key-123456', timeoutMs: 250 } }, { logger: false })
  t.teardown(() => app.close())
  const res = await app.inject('/mj/image/slow')
  t.equal(res.statusCode, 200)
  t.equal(res.rawPayload.length, CHUNK.length * 6, 'every byte of the 600 ms stream')
})

t.test('a submit answer is read within the size bound and never echoes the key back', async (t) => {
  const key = 'sk-relay-key-123456'
  const app = await buildApp({ upstream: { baseUrl: await relayUpstream(t), key, maxBodyBytes: 2048 } }, { logger: false })
  t.teardown(() => app.close())
  const refused = await app.inject({ method: 'POST', url: '/mj/submit/imagine', payload: { prompt: 'x' } })
  t.equal(refused.statusCode, 401, 'upstream\'s status passes through')
  t.same(refused.json(), { description: 'invalid token [redacted]', type: 'upstream_error', code: 4 })
  const oversized = await app.inject({ method: 'POST', url: '/mj/submit/blend', payload: {} })
  t.equal(oversized.statusCode, 502)
  t.equal(oversized.json().code, 'UPSTREAM_BAD_RESPONSE')
})

t.test('a submit upstream fails with a 5xx is the gateway\'s coded 502, or 503 with upstream\'s Retry-After', async (t) => {
  const app = await buildApp({ upstream: { baseUrl: await relayUpstream(t), key: 'sk-relay-key-123456' } }, { logger: false })
  t.teardown(() => app.close())
  const failed = await app.inject({ method: 'POST', url: '/mj/submit/describe', payload: { link: 'https://x/y.png' } })
  t.equal(failed.statusCode, 502)
  t.strictSame(failed.json(), { statusCode: 502, code: 'UPSTREAM_ERROR', error: 'Bad Gateway', message: 'Upstream call failed: submit answered HTTP 500: internal error' })
  const html = await app.inject({ method: 'POST', url: '/mj/submit/shorten', payload: { prompt: 'x' } })
  t.equal(html.statusCode, 502, 'an HTML error page is upstream failing, not a bad answer')
  t.equal(html.json().message, 'Upstream call failed: submit answered HTTP 502: non-JSON body')
  const unavailable = await app.inject({ method: 'POST', url: '/mj/submit/modal', payload: { taskId: '1' } })
  t.equal(unavailable.statusCode, 503)
  t.equal(unavailable.headers['retry-after'], '7')
  t.strictSame(unavailable.json(), { statusCode: 503, code: 'UPSTREAM_UNAVAILABLE', error: 'Service Unavailable', message: 'Upstream is unavailable: submit answered HTTP 503: maintenance' })
})

t.test('a submit upstream answers 429 is relayed with its body and Retry-After', async (t) => {
  const app = await buildApp({ upstream: { baseUrl: await relayUpstream(t), key: 'sk-relay-key-123456' } }, { logger: false })
  t.teardown(() => app.close())
  const limited = await app.inject({ method: 'POST', url: '/mj/submit/action', payload: { taskId: '1', customId: 'MJ::JOB::upsample::1::x' } })
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['retry-after'], '30')
  t.strictSame(limited.json(), { description: 'channel rate limited ', type: 'upstream_error', code: 4 })
})

t.test('a submit upstream does not answer in time is 504', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t, { upstream: { timeoutMs: 200 } })
  sim.faults.add({ route: 'imagine', kind: 'hang', times: 1 })
  const res = await app.inject({ method: 'POST', url: '/mj/submit/imagine', payload: { prompt: 'a fox' } })
  t.equal(res.statusCode, 504)
  t.strictSame(res.json(), { statusCode: 504, code: 'UPSTREAM_TIMEOUT', error: 'Gateway Timeout', message: 'Upstream did not answer within 200 ms' })
  t.equal(sim.allCalls.filter((c) => c.route === 'imagine').length, 1, 'a submit is never retried')
})

t.test('an image upstream fails with a 5xx is coded like a submit; a 429 keeps its Retry-After', async (t) => {
  const app = await buildApp({ upstream: { baseUrl: await relayUpstream(t), key: 'sk-relay-key-123456' } }, { logger: false })
  t.teardown(() => app.close())
  const broken = await app.inject('/mj/image/broken')
  t.equal(broken.statusCode, 502)
  t.strictSame(broken.json(), { statusCode: 502, code: 'UPSTREAM_ERROR', error: 'Bad Gateway', message: 'Upstream call failed: image answered HTTP 500: non-JSON body' })
  const busy = await app.inject('/mj/image/busy')
  t.equal(busy.statusCode, 503)
  t.equal(busy.headers['retry-after'], '9')
  t.equal(busy.json().code, 'UPSTREAM_UNAVAILABLE')
  const limited = await app.inject('/mj/image/limited')
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['retry-after'], '11')
  t.strictSame(limited.json(), { description: 'slow down ', type: 'upstream_error', code: 4 })
})

// ---- Idempotency-Key ---------------------------------------------------------

const imagine = (key: string | undefined, body: unknown = { prompt: 'a red fox in snow' }, headers: Record<string, string> = {}): InjectOptions => ({
  method: 'POST',
  url: '/mj/submit/imagine',
  headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }), ...headers },
  payload: JSON.stringify(body)
})

t.test('the same Idempotency-Key twice makes one upstream submit and two identical answers, the second marked replayed', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  const first = await app.inject(imagine('order-1'))
  const second = await app.inject(imagine('order-1', { prompt: 'a red fox in snow' }))
  t.equal(submitCalls(sim).length, 1, 'one submit reached upstream')
  t.equal(first.statusCode, 200)
  t.equal(first.json().code, 1)
  t.equal(second.statusCode, first.statusCode)
  t.equal(second.body, first.body, 'the same body, byte for byte')
  t.equal(first.headers['idempotent-replayed'], undefined, 'the first answer is not a replay')
  t.equal(second.headers['idempotent-replayed'], 'true')

  // Key order in the body does not make it another request.
  const reordered = await app.inject(imagine('order-2', { state: 's', prompt: 'p' }))
  const again = await app.inject(imagine('order-2', { prompt: 'p', state: 's' }))
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(again.body, reordered.body)
  t.equal(submitCalls(sim).length, 2)
})

t.test('without a key every submit goes upstream', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  const a = await app.inject(imagine(undefined))
  const b = await app.inject(imagine(undefined))
  t.not(a.json().result, b.json().result)
  t.equal(submitCalls(sim).length, 2)
  t.equal(b.headers['idempotent-replayed'], undefined)
})

t.test('the same key with another body gets 422 GW_ERR_IDEMPOTENCY_KEY_REUSED and sends nothing', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  await app.inject(imagine('k'))
  const other = await app.inject(imagine('k', { prompt: 'a blue fox' }))
  t.equal(other.statusCode, 422)
  t.strictSame(other.json(), {
    statusCode: 422,
    code: 'GW_ERR_IDEMPOTENCY_KEY_REUSED',
    error: 'Unprocessable Entity',
    message: 'This idempotency key was already used for a submit with a different body; use a new key for a new submit'
  })
  const otherAction = await app.inject({ method: 'POST', url: '/mj/submit/describe', headers: { 'idempotency-key': 'k' }, payload: { link: 'https://example.test/a.png' } })
  t.equal(otherAction.statusCode, 200, 'keys are per action: describe with the same key is a submit of its own')
  t.equal(submitCalls(sim, 'imagine').length, 1)
  t.equal(submitCalls(sim, 'describe').length, 1)
})

t.test('concurrent requests with one key make one submit: the others get 409 with Retry-After, then the answer', async (t) => {
  const { app, sim, gate } = await gatewayOnSimulator(t)
  sim.faults.add({ route: 'imagine', kind: 'latency', ms: 1, times: 1 })
  const first = app.inject(imagine('busy'))
  await gate.waitForHeld(1)
  const during = await Promise.all([app.inject(imagine('busy')), app.inject(imagine('busy'))])
  for (const res of during) {
    t.equal(res.statusCode, 409)
    t.equal(res.headers['retry-after'], '1')
    t.equal(res.json().code, 'GW_ERR_IDEMPOTENCY_KEY_IN_USE')
  }
  gate.releaseAll()
  const answered = await first
  t.equal(answered.statusCode, 200)
  const after = await app.inject(imagine('busy'))
  t.equal(after.body, answered.body)
  t.equal(after.headers['idempotent-replayed'], 'true')
  t.equal(submitCalls(sim).length, 1)
})

t.test('after an upstream 5xx, a 429, a timeout or a dropped connection the same key goes upstream again', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t, { upstream: { timeoutMs: 300 } })
  sim.faults.add({ route: 'imagine', kind: 'error', status: 500, description: 'proxy exploded', times: 1 })
  const failed = await app.inject(imagine('retry-me'))
  t.equal(failed.statusCode, 502, "upstream's 5xx is the gateway's coded 502")
  t.equal(failed.json().code, 'UPSTREAM_ERROR')
  t.equal(failed.headers['idempotent-replayed'], undefined)
  sim.faults.add({ route: 'imagine', kind: 'error', status: 503, description: 'maintenance', times: 1 })
  const unavailable = await app.inject(imagine('retry-me'))
  t.equal(unavailable.statusCode, 503, 'a 503 is not a stored answer: the key was released after the 502')
  t.equal(unavailable.json().code, 'UPSTREAM_UNAVAILABLE')
  sim.faults.add({ route: 'imagine', kind: 'rate-limit', retryAfterSeconds: 3, times: 1 })
  const limited = await app.inject(imagine('retry-me'))
  t.equal(limited.statusCode, 429, "upstream's 429 is relayed")
  t.equal(limited.headers['retry-after'], '3', 'with its Retry-After')
  t.equal(limited.headers['idempotent-replayed'], undefined)
  sim.faults.add({ route: 'imagine', kind: 'hang', times: 1 })
  const timedOut = await app.inject(imagine('retry-me'))
  t.equal(timedOut.statusCode, 504)
  t.equal(timedOut.json().code, 'UPSTREAM_TIMEOUT')
  sim.faults.add({ route: 'imagine', kind: 'malformed', body: 'html', times: 1 })
  const garbled = await app.inject(imagine('retry-me'))
  t.equal(garbled.statusCode, 502)
  const created = await app.inject(imagine('retry-me'))
  t.equal(created.statusCode, 200)
  t.equal(created.json().code, 1)
  t.equal(created.headers['idempotent-replayed'], undefined)
  t.equal(submitCalls(sim).length, 6, 'each retry reached upstream')
  const replay = await app.inject(imagine('retry-me'))
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.equal(replay.headers['retry-after'], undefined, 'a replayed answer carries no Retry-After')
  t.equal(submitCalls(sim).length, 6)
})

t.test("upstream's refusals are answers: a 4xx and a refusal code are replayed as they were", async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  const missing = await app.inject(imagine('no-prompt', {}))
  t.equal(missing.statusCode, 400)
  const again = await app.inject(imagine('no-prompt', {}))
  t.equal(again.statusCode, 400)
  t.equal(again.body, missing.body)
  t.equal(again.headers['idempotent-replayed'], 'true')
  const banned = await app.inject(imagine('banned', { prompt: 'something banned' }))
  t.equal(banned.json().code, 24)
  t.equal((await app.inject(imagine('banned', { prompt: 'something banned' }))).body, banned.body)
  t.equal(submitCalls(sim).length, 2)
})

t.test('the same key from two tenants makes two submits, each with its own credential', async (t) => {
  const tenants = ['sk-tenant-a-0123456789', 'sk-tenant-b-0123456789']
  const { app, sim } = await gatewayOnSimulator(t, { upstream: { auth: 'passthrough' } }, { keys: tenants })
  const a = await app.inject(imagine('shared-key', undefined, { authorization: `Bearer ${tenants[0]}` }))
  const b = await app.inject(imagine('shared-key', undefined, { authorization: `Bearer ${tenants[1]}` }))
  t.equal(a.statusCode, 200)
  t.equal(b.statusCode, 200)
  t.not(a.json().result, b.json().result)
  t.equal(b.headers['idempotent-replayed'], undefined)
  t.strictSame(submitCalls(sim).map((call) => call.keyLabel), ['key#0', 'key#1'])
  const replay = await app.inject(imagine('shared-key', undefined, { authorization: `Bearer ${tenants[1]}` }))
  t.equal(replay.body, b.body, "a tenant's retry gets its own answer")
  t.equal(submitCalls(sim).length, 2)
})

t.test('under GATEWAY_API_KEYS the same key from two client keys makes two submits', async (t) => {
  const clients = ['client-key-one-0123456789', 'client-key-two-0123456789']
  const { app, sim } = await gatewayOnSimulator(t, { security: { apiKeys: clients.join(',') } })
  const one = await app.inject(imagine('k', undefined, { 'x-api-key': clients[0]! }))
  const two = await app.inject(imagine('k', undefined, { authorization: `Bearer ${clients[1]}` }))
  const oneAgain = await app.inject(imagine('k', undefined, { authorization: `Bearer ${clients[0]}` }))
  t.not(one.json().result, two.json().result)
  t.equal(oneAgain.body, one.body, 'the same client, however it presents its key, shares its keys')
  t.equal(oneAgain.headers['idempotent-replayed'], 'true')
  t.equal(submitCalls(sim).length, 2)
})

t.test('a key that is empty, too long or not printable ASCII gets 400 GW_ERR_IDEMPOTENCY_KEY_INVALID before anything is sent', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  const cases: Array<[string, string]> = [
    ['', 'it is empty; send 1 to 255 printable ASCII characters'],
    ['k'.repeat(256), 'it is 256 characters long; at most 255 allowed'],
    ['caf\u00e9', 'character 4 is not printable ASCII (0x20 to 0x7E)']
  ]
  for (const [key, message] of cases) {
    const res = await app.inject(imagine(key))
    t.equal(res.statusCode, 400)
    t.strictSame(res.json(), { statusCode: 400, code: 'GW_ERR_IDEMPOTENCY_KEY_INVALID', error: 'Bad Request', message: `Invalid idempotency key: ${message}` })
  }
  t.equal((await app.inject(imagine('k'.repeat(255)))).statusCode, 200, '255 characters are fine')
  t.equal(submitCalls(sim).length, 1)
})

t.test('a stored answer is replayed for IDEMPOTENCY_TTL_MS, and the key is new again after it', async (t) => {
  const clock = new ManualClock()
  const { app, sim } = await gatewayOnSimulator(t, { idempotency: { ttlMs: 60_000 } }, {}, { now: clock.now })
  await app.inject(imagine('k'))
  clock.advance(60_000)
  t.equal((await app.inject(imagine('k'))).headers['idempotent-replayed'], 'true')
  clock.advance(1)
  const fresh = await app.inject(imagine('k', { prompt: 'a new submit under an expired key' }))
  t.equal(fresh.statusCode, 200)
  t.equal(fresh.headers['idempotent-replayed'], undefined)
  t.equal(submitCalls(sim).length, 2)
})

t.test('the relay keeps its limits with a key: pass-through auth, and the body bound', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t, { upstream: { auth: 'passthrough' }, limits: { submitBodyLimitBytes: 1024 } })
  const anonymous = await app.inject(imagine('k'))
  t.equal(anonymous.statusCode, 401)
  const large = await app.inject(imagine('k', { prompt: 'x'.repeat(2000) }, { authorization: `Bearer ${sim.defaultKey}` }))
  t.equal(large.statusCode, 413)
  t.equal(submitCalls(sim).length, 0)
  const ok = await app.inject(imagine('k', undefined, { authorization: `Bearer ${sim.defaultKey}` }))
  t.equal(ok.statusCode, 200, 'refused requests did not take the key')
})
