import t from 'tap'
import { connect } from 'node:net'
import WebSocket from 'ws'
import { createClient } from 'graphql-ws'
import type { FastifyInstance } from 'fastify'
import { normalizeConfig } from '../../src/config.js'
import { ManualClock, setup, waitFor } from '../helpers/gateway.js'

/**
 * What Node's HTTP layer refuses before any route runs: requests that never
 * finish arriving (REQUEST_TIMEOUT_MS), headers too large, request lines that
 * are not HTTP. Each gets a coded JSON body and a closed connection. These
 * tests use a short timeout and wait on the connection closing, never on time.
 */

const REQUEST_TIMEOUT_MS = 300

interface RawAnswer { status: number, headers: Record<string, string>, body: any, raw: string }

/** Sends `bytes` on a fresh connection and collects everything until the server closes it. */
async function exchange (base: string, bytes: string): Promise<RawAnswer> {
  const { port } = new URL(base)
  const socket = connect(Number(port), '127.0.0.1')
  let raw = ''
  let closed = false
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { raw += chunk })
  socket.on('error', () => {})
  socket.on('close', () => { closed = true })
  socket.write(bytes)
  try {
    await waitFor(() => closed, 'the server to close the connection', 10_000)
  } finally {
    socket.destroy()
  }
  const [head = '', body = ''] = raw.split('\r\n\r\n')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
  return { status: Number(statusLine.split(' ')[1]), headers, body: body === '' ? undefined : JSON.parse(body), raw }
}

async function gateway (t: Parameters<typeof setup>[0], clock = new ManualClock()): Promise<{ app: FastifyInstance, base: string, upstream: Awaited<ReturnType<typeof setup>>['upstream'] }> {
  const { app, upstream } = await setup(t, { limits: { requestTimeoutMs: REQUEST_TIMEOUT_MS }, watch: { intervalMs: 3_600_000 } }, { now: clock.now })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, base, upstream }
}

const TIMEOUT_BODY = {
  statusCode: 408,
  code: 'GW_ERR_REQUEST_TIMEOUT',
  error: 'Request Timeout',
  message: `The request did not arrive in full within ${REQUEST_TIMEOUT_MS} ms (REQUEST_TIMEOUT_MS)`
}

t.test('REQUEST_TIMEOUT_MS: documented default of 30 s, validated', async (t) => {
  t.equal(normalizeConfig().limits.requestTimeoutMs, 30_000)
  t.throws(() => normalizeConfig({ limits: { requestTimeoutMs: 0 } }), /Invalid option limits.requestTimeoutMs: expected an integer from 100 to 600000, got 0/)
})

t.test('a POST that declares 100 bytes and sends 10 is cut with a coded 408', async (t) => {
  const { base, upstream } = await gateway(t)
  const answer = await exchange(base, 'POST /v1/tasks HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ids": [1')
  t.equal(answer.status, 408)
  t.equal(answer.headers.connection, 'close')
  t.match(answer.headers['content-type'], /^application\/json/)
  t.strictSame(answer.body, TIMEOUT_BODY)
  t.equal(upstream.calls.length, 0)
})

t.test('headers that never finish are cut with a coded 408', async (t) => {
  const { base } = await gateway(t)
  const answer = await exchange(base, 'GET /v1/tasks/1 HTTP/1.1\r\nHost: gw\r\nX-Slow: one')
  t.equal(answer.status, 408)
  t.strictSame(answer.body, TIMEOUT_BODY)
})

t.test('a connection that never sends a byte is cut with a coded 408', async (t) => {
  const { base } = await gateway(t)
  const answer = await exchange(base, '')
  t.equal(answer.status, 408)
  t.strictSame(answer.body, TIMEOUT_BODY)
})

t.test('headers larger than Node accepts are a coded 431', async (t) => {
  const { base } = await gateway(t)
  const answer = await exchange(base, `GET /v1/tasks/1 HTTP/1.1\r\nHost: gw\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`)
  t.equal(answer.status, 431)
  t.equal(answer.headers.connection, 'close')
  t.strictSame(answer.body, { statusCode: 431, code: 'GW_ERR_HEADERS_TOO_LARGE', error: 'Request Header Fields Too Large', message: 'The request headers are larger than the server accepts' })
})

t.test('a request line that is not HTTP is a coded 400', async (t) => {
  const { base } = await gateway(t)
  for (const line of ['HELLO WORLD\r\n\r\n', 'GET /v1/tasks/1 HTTP/9.9.9\r\n\r\n', 'GET /v1 tasks HTTP/1.1\r\nHost: gw\r\n\r\n']) {
    const answer = await exchange(base, line)
    t.equal(answer.status, 400, JSON.stringify(line))
    t.equal(answer.body.code, 'GW_ERR_BAD_REQUEST')
    t.match(answer.body.message, /^Malformed HTTP request: Parse Error: /)
  }
})

t.test('an SSE stream and a WebSocket subscription outlive the request timeout', async (t) => {
  const clock = new ManualClock()
  const { app, base, upstream } = await gateway(t, clock)
  const [id] = upstream.add({ id: '1700000000000001', progress: '10%' })

  const controller = new AbortController()
  t.teardown(() => controller.abort())
  const sse = await fetch(`${base}/v1/tasks/stream?ids=${id}`, { signal: controller.signal })
  t.equal(sse.status, 200)
  let text = ''
  void (async () => {
    try {
      for await (const chunk of sse.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString('utf8')
    } catch {}
  })()

  const updates: unknown[] = []
  let wsClosed = false
  const client = createClient({ url: base.replace(/^http/, 'ws') + '/graphql', webSocketImpl: WebSocket, retryAttempts: 0, on: { closed: () => { wsClosed = true } } })
  t.teardown(() => client.dispose())
  client.subscribe({ query: `subscription { taskUpdates(ids: ["${id}"]) { progress } }` }, { next: (r) => { updates.push(r.data) }, error: () => {}, complete: () => {} })
  await waitFor(() => text.includes('event: task') && updates.length === 1, 'both streams to carry the first state')

  // A request opened after both streams is cut: the deadline has passed for both of them too.
  const cut = await exchange(base, 'POST /v1/tasks HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{')
  t.equal(cut.status, 408)

  upstream.tasks.set(id!, { ...upstream.tasks.get(id!)!, progress: '60%' })
  clock.advance(3_000)
  await app.watcher.tick()
  await waitFor(() => text.includes('"progress":"60%"') && updates.length === 2, 'both streams to carry the change')
  t.strictSame(updates, [{ taskUpdates: { progress: '10%' } }, { taskUpdates: { progress: '60%' } }])
  t.equal(wsClosed, false, 'the WebSocket is still open')
})
