import t from 'tap'
import WebSocket from 'ws'
import { createClient, type Client, type ExecutionResult } from 'graphql-ws'
import type { GatewayOptions } from '../../src/config.js'
import { waitFor } from '../helpers/gateway.js'
import { liveGateway, type LiveGateway } from '../helpers/live.js'

const QUERY = `subscription Live($ids: [ID!]!) {
  taskUpdates(ids: $ids) { id status progress progressPercent final imageUrl }
}`

type Result = ExecutionResult<{ taskUpdates: { id: string, status: string, progress: string, progressPercent: number | null, final: boolean, imageUrl: string } | null }>

/** What the helpers need of a test: somewhere to register cleanup. */
interface Teardown { teardown: (fn: () => unknown) => void }

interface Harness extends LiveGateway {
  wsUrl: string
}

async function harness (t: Teardown, options: GatewayOptions = {}): Promise<Harness> {
  const live = await liveGateway(t, options)
  return { ...live, wsUrl: live.base.replace(/^http/, 'ws') + '/graphql' }
}

function wsClient (t: Teardown, url: string, connectionParams?: Record<string, unknown>): Client & { closed: Promise<void> } {
  let onClosed!: () => void
  const closed = new Promise<void>((resolve) => { onClosed = resolve })
  const client = createClient({ url, webSocketImpl: WebSocket, connectionParams, retryAttempts: 0, on: { closed: () => onClosed() } })
  t.teardown(() => client.dispose())
  return Object.assign(client, { closed })
}

/** Subscribes and records every result; `ended` settles on complete or error. */
function subscribe (client: Client, ids: string[]): { results: Result[], ended: Promise<unknown>, stop: () => void } {
  const results: Result[] = []
  let stop!: () => void
  const ended = new Promise((resolve) => {
    stop = client.subscribe({ query: QUERY, variables: { ids } }, {
      next: (r) => { results.push(r as Result) },
      error: (err) => resolve({ error: err }),
      complete: () => resolve('complete')
    })
  })
  return { results, ended, stop }
}

t.test('updates arrive in order, each change once, and completion is followed by close', async (t) => {
  const h = await harness(t)
  const id = h.started.sim.createTask(h.started.key, { prompt: 'a koi pond, ukiyo-e' })
  const done = h.started.sim.seedIds.success
  const client = wsClient(t, h.wsUrl)
  const sub = subscribe(client, [id, done])
  await waitFor(() => sub.results.length >= 2, 'the current states')
  t.same(sub.results.map((r) => [r.data?.taskUpdates?.id, r.data?.taskUpdates?.status]), [[id, 'NOT_START'], [done, 'SUCCESS']], 'current state of each id at once')
  t.equal(h.app.watcher.stats.ids, 1, 'the final task left the watch set after it was delivered')

  // Ticks without a change emit nothing; ticks with one emit it once.
  for (let i = 0; i < 12; i++) await h.step(1_000)
  await h.step(0)
  await waitFor(() => h.app.watcher.stats.ids === 0, 'the task to finish')
  t.equal(await sub.ended, 'complete', 'the subscription completes once every task is final')
  await client.closed
  t.pass('and the (lazy) client closes its socket')

  const states = sub.results.slice(2).map((r) => `${r.data!.taskUpdates!.status} ${r.data!.taskUpdates!.progress}`)
  t.equal(new Set(states).size, states.length, `no state twice: ${states.join(', ')}`)
  t.equal(states.at(-1), 'SUCCESS 100%')
  t.ok(states.includes('SUBMITTED 0%') && states.some((s) => s.startsWith('IN_PROGRESS')), 'intermediate states were sent')
  const percents = sub.results.slice(2).map((r) => r.data!.taskUpdates!.progressPercent ?? 0)
  t.same(percents, [...percents].sort((a, b) => a - b), 'in order: progress never goes back')
  const last = sub.results.at(-1)!.data!.taskUpdates!
  t.equal(last.final, true)
  t.match(last.imageUrl, /\/mj\/image\/\d+$/, 'the final image, without rand')
  t.same(h.app.watcher.stats, { ...h.app.watcher.stats, ids: 0, watches: 0, clients: 0, timerArmed: false })
})

t.test('a changing rand alone emits nothing', async (t) => {
  const h = await harness(t)
  const id = h.started.sim.createTask(h.started.key, { prompt: 'rand only' })
  h.started.sim.advance(5_000) // half way: IN_PROGRESS with a ?rand= preview
  const sub = subscribe(wsClient(t, h.wsUrl), [id])
  await waitFor(() => sub.results.length >= 1, 'the current state')
  t.match(sub.results[0]!.data!.taskUpdates!.imageUrl, /\?rand=/)
  for (let i = 0; i < 5; i++) await h.step(0)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(sub.results.length, 1, 'five polls, new rand each time, no event')
  t.ok(h.started.sim.calls.length >= 6, 'upstream was polled each tick')
})

t.test('an unknown id gets an error event for that id, not a dead socket', async (t) => {
  const h = await harness(t)
  const live = h.started.sim.createTask(h.started.key, { prompt: 'still going' })
  const client = wsClient(t, h.wsUrl)
  const sub = subscribe(client, ['1700000000000999', live])
  await waitFor(() => sub.results.length >= 1, 'the live task')
  // The unknown id is reported only after the not-found grace: two more polls at this interval.
  await h.step(0)
  await h.step(0)
  await waitFor(() => sub.results.length >= 2, 'both ids')
  const error = sub.results.find((r) => r.errors !== undefined)
  t.strictSame(error, { data: null, errors: [{ message: 'Task 1700000000000999 not found', locations: [{ line: 2, column: 3 }], path: ['taskUpdates'], extensions: { code: 'GW_ERR_TASK_NOT_FOUND', id: '1700000000000999' } }] })
  t.match(sub.results.find((r) => r.errors === undefined), { data: { taskUpdates: { id: live, status: 'NOT_START' } } })
  t.equal(h.app.watcher.stats.ids, 1, 'the unknown id left the watch set')
  await h.step(1_500)
  await waitFor(() => sub.results.length >= 3, 'the live task to move on')
  t.match(sub.results[2], { data: { taskUpdates: { id: live, status: 'SUBMITTED' } } })

  // The same socket still serves other operations.
  const other = subscribe(client, [h.started.sim.seedIds.cancel])
  t.equal(await other.ended, 'complete')
  t.match(other.results, [{ data: { taskUpdates: { status: 'CANCEL', final: true } } }])
  sub.stop()
})

t.test('limits and bad ids are operation errors with clear codes', async (t) => {
  const h = await harness(t, { watch: { maxIdsPerConnection: 2, maxConnectionsPerClient: 1 } })
  const client = wsClient(t, h.wsUrl)
  const many = subscribe(client, ['1', '2', '3'])
  t.match(await many.ended, { error: [{ message: /Too many ids to watch: 3 given, at most 2 per stream/, extensions: { code: 'GW_ERR_WATCH_TOO_MANY_IDS' } }] })
  const bad = subscribe(client, ['bad!id'])
  t.match(await bad.ended, { error: [{ extensions: { code: 'GW_ERR_INVALID_ID' } }] })
  const id = h.started.sim.createTask(h.started.key, { prompt: 'one' })
  const first = subscribe(client, [id])
  await waitFor(() => first.results.length === 1, 'the first subscription')
  const second = subscribe(client, [id])
  t.match(await second.ended, { error: [{ extensions: { code: 'GW_ERR_WATCH_TOO_MANY_STREAMS' } }] })
  t.equal(first.results.length, 1, 'the open subscription is untouched')
  first.stop()
  await waitFor(() => h.app.watcher.stats.watches === 0, 'the stopped subscription to leave')
})

t.test('pass-through tenancy: subscriptions poll with the subscriber\'s own key', async (t) => {
  const h = await harness(t, { upstream: { auth: 'passthrough', key: undefined } })
  const id = h.started.sim.createTask(h.started.key, { prompt: 'mine' })
  // Node clients send the key on the upgrade request; the security hook checks it there.
  const authorization = `Bearer ${h.started.key}`
  class KeyedSocket extends WebSocket {
    constructor (url: string, protocols?: string | string[]) { super(url, protocols, { headers: { authorization } }) }
  }
  const anonymous = subscribe(wsClient(t, h.wsUrl), [id])
  t.ok((await anonymous.ended as { error?: unknown }).error !== undefined, 'no key: refused')
  const client = createClient({ url: h.wsUrl, webSocketImpl: KeyedSocket, retryAttempts: 0 })
  t.teardown(() => client.dispose())
  const owner = subscribe(client, [id])
  await waitFor(() => owner.results.length === 1, 'the owner to see the task')
  t.match(owner.results[0], { data: { taskUpdates: { id } } })
  t.match(h.started.sim.calls.at(-1), { keyLabel: 'key#0' }, 'polled with the subscriber\'s own key')
  owner.stop()
})

t.test('pass-through subscriptions count against the client address, not the bearer token', async (t) => {
  const h = await harness(t, { upstream: { auth: 'passthrough', key: undefined }, watch: { maxConnectionsPerClient: 1 } })
  const id = h.started.sim.seedIds.modal
  const keyed = (authorization: string): Client => {
    class KeyedSocket extends WebSocket {
      constructor (url: string, protocols?: string | string[]) { super(url, protocols, { headers: { authorization } }) }
    }
    const client = createClient({ url: h.wsUrl, webSocketImpl: KeyedSocket, retryAttempts: 0 })
    t.teardown(() => client.dispose())
    return client
  }
  const owner = subscribe(keyed(`Bearer ${h.started.key}`), [id])
  await waitFor(() => owner.results.length === 1, 'the owner\'s subscription')
  const other = subscribe(keyed('Bearer made-up-token'), [id])
  // An accepted subscription would stay open: settle on its first result instead of waiting for an end.
  const outcome = await Promise.race([other.ended, waitFor(() => other.results.length > 0, 'a result').then(() => 'subscribed')])
  t.match(outcome, { error: [{ extensions: { code: 'GW_ERR_WATCH_TOO_MANY_STREAMS' } }] }, 'a new bearer token is not a new client')
  other.stop()
  owner.stop()
  await waitFor(() => h.app.watcher.stats.watches === 0, 'the subscription to leave')
})

t.test('a pass-through key upstream rejects completes the subscription with a final error per id', async (t) => {
  const h = await harness(t, { upstream: { auth: 'passthrough', key: undefined } })
  class JunkSocket extends WebSocket {
    constructor (url: string, protocols?: string | string[]) { super(url, protocols, { headers: { authorization: 'Bearer not-a-cometapi-key' } }) }
  }
  const client = createClient({ url: h.wsUrl, webSocketImpl: JunkSocket, retryAttempts: 0 })
  t.teardown(() => client.dispose())
  const id = h.started.sim.seedIds.modal
  const sub = subscribe(client, [id])
  await waitFor(() => sub.results.length >= 1, 'the error')
  t.strictSame(sub.results.map((r) => r.errors!.map((e) => [e.message, e.extensions])), [[['Upstream refused your credential: HTTP 401: invalid_token', { code: 'UPSTREAM_UNAUTHORIZED', id }]]], 'final: not retrying')
  const open = waitFor(() => false, 'completion', 2000).catch(() => 'still open')
  t.equal(await Promise.race([sub.ended, open]), 'complete', 'completes instead of polling a rejected key forever')
  t.same(h.app.watcher.stats, { ...h.app.watcher.stats, ids: 0, partitions: 0, watches: 0, clients: 0, timerArmed: false })
})

t.test('leak: 200 sockets subscribe and vanish mid-stream, the watch set empties', async (t) => {
  const h = await harness(t, { watch: { maxConnectionsPerClient: 1000 } })
  const ids = Array.from({ length: 10 }, (_, i) => h.started.sim.createTask(h.started.key, { prompt: `leak ${i}` }))
  for (let round = 0; round < 4; round++) {
    const sockets = Array.from({ length: 50 }, (_, i) => {
      const client = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 })
      const sub = subscribe(client, [ids[i % 10]!, ids[(i + 3) % 10]!])
      return { client, sub }
    })
    await waitFor(() => sockets.every((s) => s.sub.results.length === 2), 'every socket to get its states')
    t.equal(h.app.watcher.stats.watches, 50)
    await h.step(500)
    // Half stop politely, half just drop the socket.
    await Promise.all(sockets.map(async (s, i) => { if (i % 2 === 0) s.sub.stop(); await s.client.dispose() }))
    await waitFor(() => h.app.watcher.stats.watches === 0, 'every watch to be released')
  }
  t.same(h.app.watcher.stats, { ...h.app.watcher.stats, ids: 0, partitions: 0, watches: 0, clients: 0, timerArmed: false })
})

/** How a subscribe ends up: refused with an `error` message, or accepted (a first result or completion). */
async function outcome (client: Client, payload: { query: string, variables?: Record<string, unknown> }): Promise<{ error: unknown } | 'accepted'> {
  let stop!: () => void
  const result = await new Promise<{ error: unknown } | 'accepted'>((resolve) => {
    stop = client.subscribe(payload, {
      next: () => resolve('accepted'),
      error: (error) => resolve({ error }),
      complete: () => resolve('accepted')
    })
  })
  stop()
  return result
}

t.test('a subscription is validated and gets the depth, field and id limits of a query, refused with the codes HTTP answers', async (t) => {
  const h = await harness(t, { graphql: { maxDepth: 2 }, limits: { maxIdsPerRequest: 5 } })
  const done = h.started.sim.seedIds.success
  const client = wsClient(t, h.wsUrl)
  const over = async (query: string, variables?: Record<string, unknown>): Promise<unknown> => {
    const res = await h.app.inject({ method: 'POST', url: '/graphql', payload: variables === undefined ? { query } : { query, variables } })
    return res.json().errors
  }
  const aliases = Array.from({ length: 2000 }, (_, i) => `a${i}: id`).join(' ')
  const ids = (n: number): string => JSON.stringify(Array.from({ length: n }, (_, i) => String(1700000000000000 + i)))
  // Over HTTP a valid subscription is refused for its transport: the id cases compare with the same query.
  const asQuery = (query: string): string => query.replace(/^subscription/, 'query').replace('taskUpdates', 'tasks')
  const cases: Array<[string, string, ((query: string) => string)?, Record<string, unknown>?]> = [
    ['2000 aliased fields', `subscription { taskUpdates(ids: ["${done}"]) { ${aliases} } }`],
    ['too deep', `subscription { taskUpdates(ids: ["${done}"]) { buttons { label } } }`],
    ['an unknown field', `subscription { taskUpdates(ids: ["${done}"]) { id nope } }`],
    ['two root fields', `subscription { a: taskUpdates(ids: ["${done}"]) { id } b: taskUpdates(ids: ["${done}"]) { id } }`],
    ['a syntax error', 'subscription { taskUpdates(ids: ['],
    ['too many ids as a literal', `subscription { taskUpdates(ids: ${ids(6)}) { id } }`, asQuery],
    ['too many ids in a variable default', `subscription ($v: [ID!]! = ${ids(6)}) { taskUpdates(ids: $v) { id } }`, asQuery],
    ['too many ids in a variable', 'subscription ($v: [ID!]!) { taskUpdates(ids: $v) { id } }', asQuery, { v: JSON.parse(ids(6)) }]
  ]
  for (const [what, query, http = (q: string) => q, variables] of cases) {
    const errors = await over(http(query), variables)
    t.ok(Array.isArray(errors) && errors.length > 0, `${what}: refused over HTTP`)
    t.strictSame(await outcome(client, { query, variables }), { error: errors }, `${what}: the same errors over WebSocket`)
  }
  t.strictSame((await over(cases[0]![1]) as Array<{ extensions: unknown }>)[0]!.extensions, { code: 'GW_ERR_QUERY_TOO_COMPLEX' })
  t.strictSame((await over(cases[2]![1]) as Array<{ extensions: unknown }>)[0]!.extensions, { code: 'GRAPHQL_VALIDATION_FAILED' })
  t.strictSame((await over(asQuery(cases[6]![1])) as Array<{ extensions: unknown }>)[0]!.extensions, { code: 'GW_ERR_TOO_MANY_IDS' })
  t.equal(await outcome(client, { query: QUERY, variables: { ids: [done] } }), 'accepted', 'the socket still serves good operations')
  t.equal(h.app.watcher.stats.watches, 0, 'no refused operation holds a watch')
})

t.test('each subscribe counts toward the client\'s rate limit like a request', async (t) => {
  const h = await harness(t, { security: { rateLimitMax: 4, rateLimitWindowMs: 60_000 } })
  const done = h.started.sim.seedIds.success
  // One socket for every subscribe: a lazy client would open a new one (a new upgrade request) each time.
  const client = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false })
  t.teardown(() => client.dispose())
  // The upgrade request is the first of four; three subscribes fit.
  for (let i = 0; i < 3; i++) t.equal(await outcome(client, { query: QUERY, variables: { ids: [done] } }), 'accepted', `subscribe #${i + 1}`)
  const calls = h.started.sim.calls.length
  const refused = await outcome(client, { query: QUERY, variables: { ids: [done] } }) as { error: Array<{ message: string, extensions: unknown }> }
  t.equal(refused.error.length, 1)
  t.strictSame(refused.error[0]!.extensions, { code: 'GW_ERR_RATE_LIMITED' })
  t.match(refused.error[0]!.message, /^Rate limit exceeded: at most 4 requests per 60 s; retry in \d+ s$/)
  t.equal(h.started.sim.calls.length, calls, 'the refused subscribe reached no upstream')
  const http = await h.app.inject({ method: 'POST', url: '/graphql', remoteAddress: '127.0.0.1', payload: { query: '{ __typename }' } })
  t.equal(http.statusCode, 429, 'the same budget as HTTP requests from this client')
})

t.test('a subscribe reusing the id of an active operation closes the socket with 4409, and every watch ends', async (t) => {
  const h = await harness(t)
  const id = h.started.sim.createTask(h.started.key, { prompt: 'reused' })
  let closedWith: { code: number, reason: string } | undefined
  const client = createClient({
    url: h.wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    generateID: () => 'same-id',
    on: { closed: (event) => { const e = event as { code: number, reason: string }; closedWith = { code: e.code, reason: e.reason } } }
  })
  t.teardown(() => client.dispose())
  const first = subscribe(client, [id])
  await waitFor(() => first.results.length === 1, 'the first operation')
  t.equal(h.app.watcher.stats.watches, 1)
  const second = subscribe(client, [id])
  await waitFor(() => closedWith !== undefined, 'the socket to close')
  t.strictSame(closedWith, { code: 4409, reason: 'Subscriber for same-id already exists' })
  await waitFor(() => h.app.watcher.stats.watches === 0, 'every watch of the socket to end')
  t.same(h.app.watcher.stats, { ...h.app.watcher.stats, ids: 0, watches: 0, clients: 0, timerArmed: false })
  t.ok((await first.ended as { error?: unknown }).error !== undefined && (await second.ended as { error?: unknown }).error !== undefined, 'both operations end with the socket')
})

t.test('an id is free again once its operation ended, by completion or error', async (t) => {
  const h = await harness(t)
  const client = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, generateID: () => 'again' })
  t.teardown(() => client.dispose())
  const done = h.started.sim.seedIds.success
  for (let i = 0; i < 3; i++) {
    const completed = subscribe(client, [done])
    t.equal(await completed.ended, 'complete', `round ${i + 1}: completed`)
    const refused = subscribe(client, ['bad!id'])
    t.strictSame(((await refused.ended) as { error: Array<{ extensions: unknown }> }).error.map((e) => e.extensions), [{ code: 'GW_ERR_INVALID_ID' }], `round ${i + 1}: refused`)
  }
  const live = subscribe(client, [h.started.sim.createTask(h.started.key, { prompt: 'live' })])
  await waitFor(() => live.results.length === 1, 'the live operation')
  live.stop()
  await waitFor(() => h.app.watcher.stats.watches === 0, 'the stopped operation to leave')
  t.equal(await outcome(client, { query: QUERY, variables: { ids: [done] } }), 'accepted', 'the id is free after the client stopped it')
})

/** A raw socket speaking `protocol`: what it received, and how it closed. */
async function rawSocket (t: Teardown, url: string, protocol: string): Promise<{ ws: WebSocket, received: Array<Record<string, unknown>>, closed: () => Promise<{ code: number, reason: string }> }> {
  const ws = new WebSocket(url, protocol)
  t.teardown(() => ws.terminate())
  const received: Array<Record<string, unknown>> = []
  ws.on('message', (data) => received.push(JSON.parse(String(data)) as Record<string, unknown>))
  let event: { code: number, reason: string } | undefined
  ws.on('close', (code, reason) => { event = { code, reason: String(reason) } })
  // Bounded: a socket that stays open fails the test instead of hanging it.
  const closed = async (): Promise<{ code: number, reason: string }> => { await waitFor(() => event !== undefined, 'the socket to close'); return event! }
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  ws.send(JSON.stringify({ type: 'connection_init', payload: {} }))
  await waitFor(() => received.some((m) => m.type === 'connection_ack'), 'connection_ack')
  return { ws, received, closed }
}

t.test('the legacy graphql-ws protocol gets the same rules: admission, 4409 for a reused id, watches end with the socket', async (t) => {
  const h = await harness(t)
  const id = h.started.sim.createTask(h.started.key, { prompt: 'legacy' })
  const { ws, received, closed } = await rawSocket(t, h.wsUrl, 'graphql-ws')
  ws.send(JSON.stringify({ id: 'a', type: 'start', payload: { query: 'subscription { taskUpdates(ids: ["1"]) { nope } }' } }))
  await waitFor(() => received.some((m) => m.type === 'error'), 'the refusal')
  t.strictSame(received.find((m) => m.type === 'error'), {
    type: 'error',
    id: 'a',
    payload: [{ message: 'Cannot query field "nope" on type "Task".', locations: [{ line: 1, column: 42 }], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }]
  })
  ws.send(JSON.stringify({ id: 'a', type: 'start', payload: { query: QUERY, variables: { ids: [id] } } }))
  await waitFor(() => received.some((m) => m.type === 'data'), 'the first state')
  t.equal(h.app.watcher.stats.watches, 1)
  ws.send(JSON.stringify({ id: 'a', type: 'start', payload: { query: QUERY, variables: { ids: [id] } } }))
  t.strictSame(await closed(), { code: 4409, reason: 'Subscriber for a already exists' })
  await waitFor(() => h.app.watcher.stats.watches === 0, 'the watch to end')
})

t.test('protocol errors close the socket: 4400 for a subscribe without an id, 4409 for a reused long id', async (t) => {
  const h = await harness(t)
  const noId = await rawSocket(t, h.wsUrl, 'graphql-transport-ws')
  noId.ws.send(JSON.stringify({ type: 'subscribe', payload: { query: QUERY, variables: { ids: ['1'] } } }))
  t.strictSame(await noId.closed(), { code: 4400, reason: 'Invalid message received: a subscribe needs an id' })

  const id = h.started.sim.createTask(h.started.key, { prompt: 'long id' })
  const long = await rawSocket(t, h.wsUrl, 'graphql-transport-ws')
  const subscribe = JSON.stringify({ id: 'x'.repeat(200), type: 'subscribe', payload: { query: QUERY, variables: { ids: [id] } } })
  long.ws.send(subscribe)
  await waitFor(() => long.received.some((m) => m.type === 'next'), 'the first state')
  long.ws.send(subscribe)
  t.strictSame(await long.closed(), { code: 4409, reason: 'Subscriber already exists' }, 'a close reason has at most 123 bytes')
  await waitFor(() => h.app.watcher.stats.watches === 0, 'the watch to end')
})
