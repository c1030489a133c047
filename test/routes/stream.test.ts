import t from 'tap'
import { EventSource } from 'eventsource'
import { decodeEventId, encodeEventId } from '../../src/routes/stream.js'
import { ManualClock, setup, waitFor } from '../helpers/gateway.js'
import { liveGateway } from '../helpers/live.js'
import { SseReader } from '../helpers/sse.js'

t.test('event ids round-trip, and only against the list they were made for', async (t) => {
  const id = encodeEventId('abcdefgh', ['AbC-_12345', '*', '!'])
  t.equal(id, '1:abcdefgh:AbC-_12345.*.!')
  t.same(decodeEventId(id, 'abcdefgh', 3), ['AbC-_12345', '*', '!'])
  t.equal(decodeEventId(id, 'zzzzzzzz', 3), undefined, 'another id list')
  t.equal(decodeEventId(id, 'abcdefgh', 2), undefined, 'another length')
  t.equal(decodeEventId('garbage\nid', 'abcdefgh', 3), undefined)
  t.equal(decodeEventId(undefined, 'abcdefgh', 3), undefined)
})

t.test('a stream: current states, then changes once each, then done', async (t) => {
  const h = await liveGateway(t)
  const id = h.started.sim.createTask(h.started.key, { prompt: 'a windmill' })
  const done = h.started.sim.seedIds.success
  const sse = await SseReader.open(`${h.base}/v1/tasks/stream?ids=${id},${done},${id}`)
  t.equal(sse.response.status, 200)
  t.match(sse.response.headers.get('content-type'), /^text\/event-stream/)
  t.equal(sse.response.headers.get('cache-control'), 'no-cache, no-transform')
  await waitFor(() => sse.tasks.length === 2, 'the current states')
  t.equal(sse.frames[0]!.comment, 'stream open')
  t.same(sse.tasks.map((task) => [task.id, task.status]), [[id, 'NOT_START'], [done, 'SUCCESS']])
  t.ok(sse.events.every((f) => /^1:[\w-]{8}:[\w*!.-]+$/.test(f.id ?? '')), 'every task event has an id line')

  for (let i = 0; i < 12; i++) await h.step(1_000)
  await waitFor(() => sse.ended, 'the stream to end')
  const states = sse.tasks.slice(2).map((task) => `${task.status} ${task.progress}`)
  t.equal(new Set(states).size, states.length, `each change once: ${states.join(', ')}`)
  t.equal(states.at(-1), 'SUCCESS 100%')
  t.same(sse.events.at(-1), { event: 'done', data: '{}' }, 'a final done event')
  t.equal(h.app.watcher.stats.ids, 0)
})

t.test('task events read a "" time as null, as every /v1/tasks route; ids may repeat the key', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add(
    { id: '51', status: 'SUCCESS', submitTime: '', startTime: 1_700_000_000_000, finishTime: '', buttons: null, properties: null },
    { id: '52', status: 'FAILURE', submitTime: 0, startTime: '', finishTime: 0 })
  // Both tasks are final: the stream sends their states and `done`, then ends.
  const res = await app.inject('/v1/tasks/stream?ids=51&ids=52')
  t.equal(res.statusCode, 200)
  const tasks = [...res.body.matchAll(/^event: task\nid: .*\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]!))
  t.strictSame(tasks.map((task) => [task.id, task.submitTime, task.startTime, task.finishTime]),
    [['51', null, 1_700_000_000_000, null], ['52', 0, null, 0]])
  t.match(res.body, /event: done\n/)
  const dropIn = await app.inject('/mj/task/51/fetch')
  t.strictSame([dropIn.json().submitTime, dropIn.json().finishTime], ['', ''], 'the cached row is unchanged')
})

t.test('heartbeat comments keep an idle stream alive', async (t) => {
  const h = await liveGateway(t, { watch: { heartbeatMs: 100 } })
  const id = h.started.sim.createTask(h.started.key, { prompt: 'idle' })
  const sse = await SseReader.open(`${h.base}/v1/tasks/stream?ids=${id}`)
  await waitFor(() => sse.frames.filter((f) => f.comment === 'ping').length >= 2, 'two pings', 2000)
  t.equal(sse.tasks.length, 1, 'pings carry no events')
  sse.abort()
  await waitFor(() => h.app.watcher.stats.watches === 0, 'the watch to go')
})

t.test('reconnect with Last-Event-ID resumes without duplicates', async (t) => {
  const h = await liveGateway(t)
  const moving = h.started.sim.createTask(h.started.key, { prompt: 'moving' })
  const still = h.started.sim.seedIds.modal // MODAL never changes and is not final
  const final = h.started.sim.seedIds.failure
  const unknown = '1700000000000999'
  const url = `${h.base}/v1/tasks/stream?ids=${moving},${still},${final},${unknown}`
  const first = await SseReader.open(url)
  await waitFor(() => first.events.length === 3, 'the first states')
  // The unknown id is reported only after the not-found grace: two more polls at this interval.
  await h.step(0)
  await h.step(0)
  await waitFor(() => first.events.length === 4, 'the unknown id')
  t.match(first.events.find((f) => f.event === 'error'), { event: 'error', data: JSON.stringify({ id: unknown, code: 'GW_ERR_TASK_NOT_FOUND', message: `Task ${unknown} not found` }) })
  const lastId = first.lastId!
  first.abort()
  await waitFor(() => h.app.watcher.stats.watches === 0, 'the first stream to be released')

  // Nothing changed: a resume sends nothing but pings.
  const same = await SseReader.open(url, { 'last-event-id': lastId })
  await h.step(0)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(same.events, [], 'no duplicates of what the client has')
  same.abort()

  // The moving task changed while the client was away: only that is sent.
  await h.step(1_500) // nothing watched: only the clocks move
  const resumed = await SseReader.open(url, { 'last-event-id': lastId })
  await waitFor(() => resumed.events.length >= 1, 'the missed change')
  t.same(resumed.tasks.map((task) => [task.id, task.status]), [[moving, 'SUBMITTED']])
  t.equal(h.app.watcher.stats.ids, 2, 'final and unknown ids from the resumed state are not watched again')

  // A Last-Event-ID from another id list is ignored: the stream starts fresh.
  const other = await SseReader.open(`${h.base}/v1/tasks/stream?ids=${still}`, { 'last-event-id': lastId })
  await waitFor(() => other.tasks.length === 1, 'a fresh state')
  other.abort()
  resumed.abort()
})

t.test('EventSource reconnects on its own after a dropped connection and gets no duplicates', async (t) => {
  const h = await liveGateway(t)
  const id = h.started.sim.createTask(h.started.key, { prompt: 'dropped' })
  const sent: Array<string | null> = []
  const es = new EventSource(`${h.base}/v1/tasks/stream?ids=${id}`, {
    fetch: (input, init) => {
      sent.push(new Headers(init?.headers).get('last-event-id'))
      return fetch(input, init)
    }
  })
  t.teardown(() => es.close())
  const got: string[] = []
  let done = false
  es.addEventListener('task', (e) => { const task = JSON.parse(e.data); got.push(`${task.status} ${task.progress}`) })
  es.addEventListener('done', () => { done = true; es.close() })
  await waitFor(() => got.length === 1, 'the first state')
  await h.step(1_500)
  await waitFor(() => got.length === 2, 'a change')
  for (const socket of h.sockets) socket.destroy() // the network drops
  await h.step(1_000) // a change while disconnected
  await waitFor(() => sent.length === 2, 'the reconnect', 10_000)
  t.match(sent[1], /^1:/, 'the reconnect carried Last-Event-ID')
  for (let i = 0; i < 10; i++) await h.step(1_000)
  await waitFor(() => done, 'done', 10_000)
  t.equal(new Set(got).size, got.length, `no state twice: ${got.join(', ')}`)
  t.equal(got.at(-1), 'SUCCESS 100%')
})

t.test('refusals are JSON errors before the stream opens', async (t) => {
  const h = await liveGateway(t, { watch: { maxIdsPerConnection: 2, maxConnectionsPerClient: 1 } })
  const cases: Array<[string, number, string]> = [
    ['/v1/tasks/stream', 400, 'GW_ERR_BAD_REQUEST'],
    ['/v1/tasks/stream?ids=', 400, 'GW_ERR_BAD_REQUEST'],
    ['/v1/tasks/stream?ids=1,bad!id', 400, 'GW_ERR_INVALID_ID'],
    ['/v1/tasks/stream?ids=1,2,3', 400, 'GW_ERR_WATCH_TOO_MANY_IDS']
  ]
  for (const [path, status, code] of cases) {
    const res = await fetch(h.base + path)
    t.equal(res.status, status, path)
    t.match(await res.json(), { statusCode: status, code }, path)
  }
  const open = await SseReader.open(`${h.base}/v1/tasks/stream?ids=${h.started.sim.seedIds.modal}`)
  const refused = await fetch(`${h.base}/v1/tasks/stream?ids=${h.started.sim.seedIds.modal}`)
  t.equal(refused.status, 429)
  t.match(await refused.json(), { code: 'GW_ERR_WATCH_TOO_MANY_STREAMS', message: /WATCH_MAX_CONNECTIONS_PER_CLIENT/ })
  open.abort()
})

t.test('pass-through streams count against the client address, whatever bearer token each one sends', async (t) => {
  const h = await liveGateway(t, { upstream: { auth: 'passthrough', key: undefined }, watch: { maxConnectionsPerClient: 1 } })
  const url = `${h.base}/v1/tasks/stream?ids=${h.started.sim.seedIds.modal}`
  const open = await SseReader.open(url, { authorization: `Bearer ${h.started.key}` })
  t.equal(open.response.status, 200)
  for (const token of ['made-up-1', 'made-up-2']) {
    const refused = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    t.equal(refused.status, 429, `${token}: a new bearer token is not a new client`)
    if (refused.status !== 429) await refused.body?.cancel() // an open stream: do not wait for its end
    else t.match(await refused.json(), { code: 'GW_ERR_WATCH_TOO_MANY_STREAMS' })
  }
  open.abort()
  await waitFor(() => h.app.watcher.stats.watches === 0, 'the stream to go')
})

t.test('with GATEWAY_API_KEYS, streams count against the client key', async (t) => {
  const keys = ['client-key-one-0123456789', 'client-key-two-0123456789']
  const h = await liveGateway(t, { security: { apiKeys: keys.join(',') }, watch: { maxConnectionsPerClient: 1 } })
  const url = `${h.base}/v1/tasks/stream?ids=${h.started.sim.seedIds.modal}`
  const one = await SseReader.open(url, { 'x-api-key': keys[0]! })
  const two = await SseReader.open(url, { 'x-api-key': keys[1]! })
  t.same([one.response.status, two.response.status], [200, 200], 'two keys from one address are two clients')
  const again = await fetch(url, { headers: { 'x-api-key': keys[0]! } })
  t.equal(again.status, 429, 'the same key again is over its limit')
  if (again.status !== 429) await again.body?.cancel()
  else t.match(await again.json(), { code: 'GW_ERR_WATCH_TOO_MANY_STREAMS' })
  one.abort()
  two.abort()
  await waitFor(() => h.app.watcher.stats.watches === 0, 'the streams to go')
})

t.test('a pass-through key upstream rejects ends the stream with a final error per id, not endless retries', async (t) => {
  const h = await liveGateway(t, { upstream: { auth: 'passthrough', key: undefined } })
  const ids = [h.started.sim.seedIds.modal, h.started.sim.seedIds.success]
  const sse = await SseReader.open(`${h.base}/v1/tasks/stream?ids=${ids.join(',')}`, { authorization: 'Bearer not-a-cometapi-key' })
  t.equal(sse.response.status, 200)
  await waitFor(() => sse.ended, 'the stream to end')
  const errors = sse.events.filter((f) => f.event === 'error').map((f) => JSON.parse(f.data!))
  const refused = 'Upstream refused your credential: HTTP 401: invalid_token'
  t.strictSame(errors, [{ id: ids[0], code: 'UPSTREAM_UNAUTHORIZED', message: refused }, { id: ids[1], code: 'UPSTREAM_UNAUTHORIZED', message: refused }], 'final, not retrying')
  t.match(sse.lastId, /:!\.!$/, 'both ids marked gone, so a resume does not watch them again')
  t.same(sse.events.at(-1), { event: 'done', data: '{}' })
  t.same(h.app.watcher.stats, { ...h.app.watcher.stats, ids: 0, partitions: 0, watches: 0, clients: 0, timerArmed: false })
})

t.test('a task nested 5000 deep is an error event for that id alone: the ids after it stream on, and the process lives', async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, { watch: { intervalMs: 3_600_000 } }, { now: clock.now })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const deepId = '1700000000000001'
  const [after] = upstream.add({ id: '1700000000000002', progress: '10%' })
  const deep = `{"id":"${deepId}","status":"IN_PROGRESS","properties":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`
  upstream.script({ kind: 'raw', body: `[${deep},${JSON.stringify(upstream.tasks.get(after!))}]` })
  const sse = await SseReader.open(`${base}/v1/tasks/stream?ids=${deepId},${after}`)
  t.teardown(() => sse.abort())
  await waitFor(() => sse.events.length === 2, 'an event per id')
  t.strictSame(sse.events.map((f) => f.event), ['error', 'task'])
  t.strictSame(JSON.parse(sse.events[0]!.data!), { id: deepId, code: 'UPSTREAM_BAD_RESPONSE', message: 'Upstream sent an unusable response: task 1700000000000001: nested deeper than 32 levels', retrying: true })
  t.equal(sse.tasks[0]!.id, after)

  // The next read goes on for both ids: the deep id is read again, the other one moves.
  upstream.tasks.set(after!, { ...upstream.tasks.get(after!)!, progress: '50%' })
  clock.advance(3_000)
  await app.watcher.tick()
  await waitFor(() => sse.tasks.length === 2, 'the change')
  t.equal(sse.tasks[1]!.progress, '50%')
  t.strictSame(upstream.calls.at(-1)!.ids, [deepId, after], 'no id left stranded as loading')
  t.strictSame(unhandled, [], 'no unhandled rejection')
})

t.test('a pass-through key revoked while its task is cached ends the stream with a final 401 error, not the stale copy', async (t) => {
  const clock = new ManualClock()
  const { app, upstream } = await setup(t, { upstream: { auth: 'passthrough', key: undefined }, watch: { intervalMs: 3_600_000 } }, { now: clock.now })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const [id] = upstream.add({ id: '1700000000000003', progress: '10%' })
  const sse = await SseReader.open(`${base}/v1/tasks/stream?ids=${id}`, { authorization: 'Bearer sk-soon-revoked-000000000001' })
  t.teardown(() => sse.abort())
  await waitFor(() => sse.tasks.length === 1, 'the first state')

  // Past the fresh TTL, well inside the stale window: the key is revoked.
  clock.advance(3_000)
  upstream.script({ kind: 'status', status: 401, body: '{"description":"invalid token","type":"new_api_error","code":""}' })
  await app.watcher.tick()
  await waitFor(() => sse.ended, 'the stream to end')
  t.strictSame(sse.events.slice(1).map((f) => [f.event, JSON.parse(f.data!)]), [
    ['error', { id, code: 'UPSTREAM_UNAUTHORIZED', message: 'Upstream refused your credential: HTTP 401: invalid token' }],
    ['done', {}]
  ])
  t.equal(app.watcher.stats.ids, 0, 'the revoked key is no longer polled')
})

t.test('closing the gateway ends open streams instead of waiting for them', async (t) => {
  const h = await liveGateway(t)
  const sse = await SseReader.open(`${h.base}/v1/tasks/stream?ids=${h.started.sim.seedIds.modal}`)
  await waitFor(() => sse.tasks.length === 1, 'the state')
  const started = Date.now()
  await h.app.close()
  t.ok(Date.now() - started < 2000, 'closed promptly')
  await waitFor(() => sse.ended, 'the client to see the end')
  t.equal(sse.frames.at(-1)!.comment, 'shutting down', 'no done: a client reconnects and resumes')
})

t.test('leak: 1000 clients connect and disconnect mid-stream, the watch set returns to empty', async (t) => {
  const h = await liveGateway(t, { watch: { maxConnectionsPerClient: 1000 } })
  const ids = Array.from({ length: 20 }, (_, i) => h.started.sim.createTask(h.started.key, { prompt: `leak ${i}` }))
  let peak = 0
  for (let round = 0; round < 10; round++) {
    const readers = await Promise.all(Array.from({ length: 100 }, (_, i) =>
      SseReader.open(`${h.base}/v1/tasks/stream?ids=${ids[(round + i) % 20]},${ids[(round + i + 7) % 20]}`)))
    await waitFor(() => readers.every((r) => r.tasks.length === 2), 'every stream to start')
    peak = Math.max(peak, h.app.watcher.stats.watches)
    await h.step(200)
    for (const r of readers) r.abort()
    await waitFor(() => h.app.watcher.stats.watches === 0, 'every watch to be released')
  }
  t.equal(peak, 100)
  t.same(h.app.watcher.stats, { ...h.app.watcher.stats, ids: 0, partitions: 0, watches: 0, clients: 0, timerArmed: false })
})
