import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import pino from 'pino'
import { UpstreamClient, parseRetryAfter, type UpstreamClientOptions } from '../../src/upstream/client.js'
import { normalizeConfig } from '../../src/config.js'

/**
 * The upstream client on its own, against a tiny scripted server: the pool
 * bound, the one deadline over retries, Retry-After, jitter bounds and the
 * body bound on a chunked (undeclared-length) answer.
 */

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void

async function server (t: { teardown: (fn: () => unknown) => void }, handler: Handler): Promise<{ url: string, peak: () => number, requests: () => number }> {
  const sockets = new Set<Socket>()
  let open = 0
  let peak = 0
  let requests = 0
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => { requests++; handler(req, res, Buffer.concat(chunks).toString('utf8')) })
  })
  srv.on('connection', (socket) => {
    sockets.add(socket)
    peak = Math.max(peak, ++open)
    socket.on('close', () => { sockets.delete(socket); open-- })
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    srv.close(() => resolve())
  }))
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, peak: () => peak, requests: () => requests }
}

function client (t: { teardown: (fn: () => unknown) => void }, url: string, opts: Partial<UpstreamClientOptions> = {}): { client: UpstreamClient, sleeps: number[], logs: string[] } {
  const defaults = normalizeConfig().upstream
  const sleeps: number[] = []
  const logs: string[] = []
  const c = new UpstreamClient({
    ...defaults,
    baseUrl: url,
    key: 'sk-unit-secret',
    logger: pino({ level: 'trace' }, { write (line: string) { logs.push(line) } }),
    sleep: async (ms) => { sleeps.push(ms) },
    random: () => 0.999,
    ...opts
  })
  t.teardown(() => c.close())
  return { client: c, sleeps, logs }
}

const answer = (ids: string[]): string => JSON.stringify(ids.map((id) => ({ id, status: 'SUCCESS' })))

t.test('documented defaults', async (t) => {
  const { upstream } = normalizeConfig()
  t.match(upstream, { timeoutMs: 10_000, connections: 16, retries: 2, retryBaseMs: 100, retryAfterCapMs: 5_000, maxBodyBytes: 16 << 20 })
})

t.test('the keep-alive pool never opens more than UPSTREAM_CONNECTIONS sockets', async (t) => {
  const held: Array<() => void> = []
  const srv = await server(t, (_req, res, body) => {
    held.push(() => res.writeHead(200, { 'content-type': 'application/json' }).end(answer(JSON.parse(body).ids)))
  })
  const { client: c } = client(t, srv.url, { connections: 3 })
  const calls = Array.from({ length: 12 }, (_, i) => c.listByCondition([`${i}`]))
  while (held.length < 3) await new Promise((resolve) => setTimeout(resolve, 5))
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(held.length, 3, 'three requests reached the server; the other nine wait in the pool')
  while (srv.requests() < 12 || held.length > 0) {
    held.shift()?.()
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  const lists = await Promise.all(calls)
  t.same(lists.map((l) => [...l.tasks.keys()]), Array.from({ length: 12 }, (_, i) => [`${i}`]))
  t.equal(srv.peak(), 3, 'connections are reused, never more than three')
})

t.test('sends the credential only as a bearer header and never logs it', async (t) => {
  let auth: string | undefined
  const srv = await server(t, (req, res) => { auth = req.headers.authorization; res.writeHead(500).end('<html>') })
  const { client: c, logs } = client(t, srv.url)
  await t.rejects(c.listByCondition(['1'], 'sk-tenant-secret'), { code: 'UPSTREAM_ERROR', message: 'Upstream call failed: HTTP 500: non-JSON body', upstreamStatus: 500 })
  t.equal(auth, 'Bearer sk-tenant-secret')
  t.notOk(logs.some((l) => l.includes('secret')))
})

t.test('full jitter: each wait is below base × 2^attempt', async (t) => {
  const srv = await server(t, (_req, res) => res.writeHead(502).end('{}'))
  const { client: c, sleeps } = client(t, srv.url, { retries: 4, retryBaseMs: 100 })
  await t.rejects(c.listByCondition(['1']), { code: 'UPSTREAM_ERROR' })
  t.equal(srv.requests(), 5)
  t.same(sleeps, [99, 199, 399, 799], 'random 0.999: just under each cap')
})

t.test('Retry-After as an HTTP date, and over the cap', async (t) => {
  t.equal(parseRetryAfter('3'), 3000)
  t.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000)
  t.equal(parseRetryAfter('soon'), undefined)
  const srv = await server(t, (_req, res) => res.writeHead(429, { 'retry-after': '6' }).end('{"description":"quota"}'))
  const { client: c, sleeps } = client(t, srv.url, { retryAfterCapMs: 5_000 })
  await t.rejects(c.listByCondition(['1']), { code: 'UPSTREAM_RATE_LIMITED', retryAfter: 6, statusCode: 503 })
  t.equal(srv.requests(), 1, 'a wait past the cap is the client\'s to make, not ours')
  t.same(sleeps, [])
})

t.test('one deadline covers every attempt and every wait (real sleeps)', async (t) => {
  const srv = await server(t, (_req, res) => res.writeHead(503).end('{}'))
  const { client: c } = client(t, srv.url, { timeoutMs: 300, retries: 10, retryBaseMs: 100, random: () => 0.5, sleep: undefined })
  const started = performance.now()
  await t.rejects(c.listByCondition(['1']), { code: 'UPSTREAM_ERROR' }, 'the last failure, not a wait cut short')
  const elapsed = performance.now() - started
  // Waits of 50, 100, 200 ms: the third would end past 300 ms, so it is not started. Ten retries
  // were allowed; the deadline, not the count, stopped it.
  t.ok(srv.requests() >= 1 && srv.requests() <= 3, `${srv.requests()} attempts fit in the deadline`)
  t.ok(elapsed < 300 + 250, `gave up by the deadline (${Math.round(elapsed)} ms); the bound is loose on purpose`)
})

t.test('a Retry-After beyond the remaining deadline is not waited out', async (t) => {
  const srv = await server(t, (_req, res) => res.writeHead(503, { 'retry-after': '2' }).end('{}'))
  const { client: c, sleeps } = client(t, srv.url, { timeoutMs: 1_000, retryAfterCapMs: 5_000 })
  await t.rejects(c.listByCondition(['1']), { code: 'UPSTREAM_ERROR', retryAfter: 2 })
  t.equal(srv.requests(), 1)
  t.same(sleeps, [])
})

t.test('a body that stops halfway is a timeout, not a hang', async (t) => {
  const srv = await server(t, (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.write('[{"id":') })
  const { client: c } = client(t, srv.url, { timeoutMs: 200 })
  await t.rejects(c.listByCondition(['1']), { code: 'UPSTREAM_TIMEOUT', statusCode: 504 })
  t.equal(srv.requests(), 1)
})

t.test('a chunked body past the size bound is cut off and logged once', async (t) => {
  let destroyed = false
  let closed!: () => void
  const gone = new Promise<void>((resolve) => { closed = resolve })
  const srv = await server(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.on('close', () => { destroyed = true; closed() })
    res.write('[')
    const chunk = JSON.stringify({ id: '1', prompt: 'x'.repeat(1000) })
    // Without a content-length, only counting the bytes as they arrive can stop it.
    const timer = setInterval(() => { if (!res.write(chunk + ',')) clearInterval(timer) }, 1)
    res.on('close', () => clearInterval(timer))
  })
  const { client: c, logs } = client(t, srv.url, { maxBodyBytes: 4096 })
  await t.rejects(c.listByCondition(['1']), { code: 'UPSTREAM_BAD_RESPONSE', message: /body exceeds the 4096-byte limit/ })
  t.equal(logs.filter((l) => l.includes('unusable list-by-condition body')).length, 1)
  await gone
  t.ok(destroyed, 'the connection was dropped rather than read to the end')
})

t.test('a declared content-length past the bound is refused before reading', async (t) => {
  const srv = await server(t, (_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': '999999' }).end('[]'))
  const { client: c, sleeps } = client(t, srv.url, { maxBodyBytes: 1024 })
  await t.rejects(c.listByCondition(['1']), { code: 'UPSTREAM_BAD_RESPONSE', message: /body of 999999 bytes exceeds the 1024-byte limit/ })
  t.same(sleeps, [])
  t.equal(srv.requests(), 1)
})

t.test('a refused connection is retried, then reported', async (t) => {
  const srv = await server(t, (_req, res) => res.end())
  const port = new URL(srv.url).port
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const deadPort = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  t.not(String(deadPort), port)
  const { client: c, sleeps } = client(t, `http://127.0.0.1:${deadPort}`)
  await t.rejects(c.listByCondition(['1']), { code: 'UPSTREAM_ERROR', message: /connection failed \(ECONNREFUSED\)/ })
  t.equal(sleeps.length, 2)
})
