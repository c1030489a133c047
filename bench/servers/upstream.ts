import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { makeTask } from '../fixtures.js'
import { childArgs, serve } from './child.js'

/**
 * The bench's upstream: a bare node:http stand-in for CometAPI's
 * `POST /mj/task/list-by-condition`, in its own process so its CPU is not
 * billed to the gateway. It knows a task for every id except those starting
 * with `missing`, answers in storage order (ids are zero-padded counters, so
 * that is sorted order) with duplicates collapsed, after `latencyMs`, and
 * counts calls itself: the bench never trusts the gateway's own count.
 */
const args = childArgs<{ latencyMs?: number }>()
let latencyMs = args.latencyMs ?? 0
let calls = 0
let ids = 0

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    if (req.method !== 'POST' || req.url?.endsWith('/mj/task/list-by-condition') !== true) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"description":"not found","type":"upstream_error","code":4}')
      return
    }
    let wanted: string[]
    try {
      wanted = JSON.parse(Buffer.concat(chunks).toString('utf8')).ids ?? []
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"description":"do_request_failed ","type":"upstream_error","code":4}')
      return
    }
    calls++
    ids += wanted.length
    const body = JSON.stringify([...new Set(wanted)].filter((id) => !id.startsWith('missing')).sort().map(makeTask))
    const answer = (): void => { res.writeHead(200, { 'content-type': 'application/json' }).end(body) }
    if (latencyMs > 0) setTimeout(answer, latencyMs)
    else answer()
  })
})
server.keepAliveTimeout = 60_000

server.listen(0, '127.0.0.1', () => {
  serve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    stats: () => ({ calls, ids }),
    reset: () => { calls = 0; ids = 0 },
    latency: (ms: number) => { latencyMs = ms }
  }, async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
})
