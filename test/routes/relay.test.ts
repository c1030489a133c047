import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../../src/app.js'
import { startSimulator } from '../helpers/simulator.js'

async function gatewayOnSimulator (t: Test, upstream: { timeoutMs?: number } = {}) {
  const started = await startSimulator(t)
  const app = await buildApp({ upstream: { baseUrl: started.url, key: started.key, ...upstream } }, { logger: false })
  t.teardown(() => app.close())
  return { app, ...started }
}

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
  const { app, sim } = await gatewayOnSimulator(t, { timeoutMs: 200 })
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
