import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../../src/app.js'
import { normalizeConfig } from '../../src/config.js'
import { startSimulator } from '../helpers/simulator.js'

const buildDefaults = () => normalizeConfig().limits

async function gatewayOnSimulator (t: Test) {
  const started = await startSimulator(t)
  const app = await buildApp({ upstream: { baseUrl: started.url, key: started.key } }, { logger: false })
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

t.test('a submit has its own body bound, SUBMIT_BODY_LIMIT_BYTES: images past BODY_LIMIT_BYTES go through, every other route keeps BODY_LIMIT_BYTES', async (t) => {
  const started = await startSimulator(t)
  const app = await buildApp({ upstream: { baseUrl: started.url, key: started.key }, limits: { submitBodyLimitBytes: 4 << 20 } }, { logger: false })
  t.teardown(() => app.close())
  t.equal(app.gateway.config.limits.bodyLimitBytes, 1 << 20, 'the default body bound')
  t.equal(buildDefaults().submitBodyLimitBytes, 16 << 20, 'the default submit bound')

  // Three images of 768 KiB each, base64: about 3 MiB, three times BODY_LIMIT_BYTES.
  const image = `data:image/png;base64,${Buffer.alloc(768 << 10, 7).toString('base64')}`
  const payload = JSON.stringify({ prompt: 'a fox, blended', base64Array: [image, image, image] })
  t.ok(payload.length > 3 * (1 << 20), `a ${payload.length}-byte submit`)
  const res = await app.inject({ method: 'POST', url: '/mj/submit/imagine', headers: { 'content-type': 'application/json' }, payload })
  t.equal(res.statusCode, 200)
  t.equal(res.json().code, 1, 'relayed and accepted upstream')
  const relayed = started.sim.allCalls.filter((c) => c.route === 'imagine')
  t.equal(relayed.length, 1, 'one submit reached upstream')

  const over = JSON.stringify({ prompt: 'too much', base64Array: [image, image, image, image, image, image] })
  const big = await app.inject({ method: 'POST', url: '/mj/submit/imagine', headers: { 'content-type': 'application/json' }, payload: over })
  t.equal(big.statusCode, 413)
  t.strictSame(big.json(), { statusCode: 413, code: 'GW_ERR_BODY_TOO_LARGE', error: 'Payload Too Large', message: `Request body is larger than this route's limit of ${4 << 20} bytes` })
  t.equal(started.sim.allCalls.filter((c) => c.route === 'imagine').length, 1, 'nothing more reached upstream')

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
