import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { buildApp } from '../../src/app.js'

/**
 * A bounded soak: 100k distinct ids through the REST surface against an
 * upstream that knows every id. It checks bounds and counts, never timings:
 * the cache and the batcher's maps stay within their limits throughout, every
 * id is asked for once, and after a forced GC the heap is back near where it
 * started.
 */

const TOTAL_IDS = 100_000
const IDS_PER_REQUEST = 500
const CONCURRENT_REQUESTS = 4
const CACHE_MAX = 10_000
const HEAP_SLACK_BYTES = 64 << 20

// A real GC without a command-line flag: the flag is set at run time, and `gc` read from a fresh context.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function heapAfterGc (): number {
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage().heapUsed
}

/** An upstream that answers every requested id with a task, and only counts what it was asked. */
async function echoUpstream (t: { teardown: (fn: () => unknown) => void }): Promise<{ url: string, stats: { calls: number, ids: number, largest: number } }> {
  const stats = { calls: 0, ids: 0, largest: 0 }
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const ids = JSON.parse(Buffer.concat(chunks).toString('utf8')).ids as string[]
      stats.calls++
      stats.ids += ids.length
      stats.largest = Math.max(stats.largest, ids.length)
      const tasks = ids.map((id) => ({ id, action: 'IMAGINE', status: 'IN_PROGRESS', progress: '50%', prompt: `soak ${id}`, submitTime: 1_700_000_000_000 }))
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(tasks))
    })
  })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stats }
}

t.test(`soak: ${TOTAL_IDS} distinct ids stay within every bound`, async (t) => {
  const upstream = await echoUpstream(t)
  const app = await buildApp({
    upstream: { baseUrl: upstream.url, key: 'sk-soak' },
    cache: { maxEntries: CACHE_MAX },
    limits: { maxIdsPerRequest: IDS_PER_REQUEST }
  }, { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  const { cache, batcher, config } = app.gateway

  const start = heapAfterGc()
  let next = 0
  let maxCache = 0
  let maxPending = 0
  let wrong = 0
  let afterWarmUp: number | undefined

  async function worker (): Promise<void> {
    while (next < TOTAL_IDS) {
      const from = next
      next += IDS_PER_REQUEST
      const ids = Array.from({ length: IDS_PER_REQUEST }, (_, i) => `soak-${from + i}`)
      const pending = app.inject({ method: 'POST', url: '/v1/tasks', payload: { ids } })
      // Sampled while requests are in flight, not only between them.
      await new Promise((resolve) => setImmediate(resolve))
      const s = batcher.stats
      maxPending = Math.max(maxPending, s.queued + s.inFlight)
      const res = await pending
      const body = res.json() as Array<{ id: string }>
      if (res.statusCode !== 200 || body.length !== ids.length || body.some((task, i) => task.id !== ids[i])) wrong++
      maxCache = Math.max(maxCache, cache.size)
      // Once the cache is full, the heap should stop growing: that is the leak signal.
      if (afterWarmUp === undefined && from >= 2 * CACHE_MAX) afterWarmUp = heapAfterGc()
    }
  }
  await Promise.all(Array.from({ length: CONCURRENT_REQUESTS }, worker))

  t.equal(wrong, 0, 'every response had the right tasks in request order')
  t.equal(upstream.stats.ids, TOTAL_IDS, 'every id was asked for exactly once')
  t.ok(upstream.stats.largest <= config.batch.maxIds, `no call over BATCH_MAX_IDS (largest ${upstream.stats.largest})`)
  t.equal(upstream.stats.calls, TOTAL_IDS / config.batch.maxIds, 'full batches')
  t.ok(maxCache <= CACHE_MAX, `the cache never passed its bound (max ${maxCache})`)
  t.equal(cache.size, CACHE_MAX, 'and is full now')
  t.ok(maxPending > 0 && maxPending <= CONCURRENT_REQUESTS * IDS_PER_REQUEST, `in-flight lookups stayed bounded (max ${maxPending})`)
  t.same(batcher.stats, { lanes: 0, queued: 0, inFlight: 0, activeCalls: 0 }, 'the batcher holds nothing afterwards')

  const end = heapAfterGc()
  const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MB`
  t.comment(`heap: start ${mb(start)}, warm ${mb(afterWarmUp ?? NaN)}, end ${mb(end)}`)
  t.ok(end < start + HEAP_SLACK_BYTES, `heap returned near its start (+${mb(end - start)}, allowed ${mb(HEAP_SLACK_BYTES)})`)
  t.ok(afterWarmUp !== undefined && end < afterWarmUp + HEAP_SLACK_BYTES / 4,
    `no growth once the cache was full (+${mb(end - (afterWarmUp ?? 0))} over the last ${TOTAL_IDS - 2 * CACHE_MAX} ids)`)

  cache.clear()
  const cleared = heapAfterGc()
  t.ok(cleared < start + HEAP_SLACK_BYTES / 4, `with the cache cleared, the heap is back to its start (+${mb(cleared - start)})`)
})
