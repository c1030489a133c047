import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { SEED_TASK_IDS } from '../../src/simulator/index.js'
import { gatewayOnSimulator, IMAGE, submitCalls } from '../helpers/submits.js'

interface GqlResponse {
  statusCode: number
  body: { data?: Record<string, any> | null, errors?: Array<{ message: string, path?: string[], extensions?: { code?: string } }> }
}

async function gql (app: FastifyInstance, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<GqlResponse> {
  const res = await app.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify({ query, variables }) })
  return { statusCode: res.statusCode, body: res.json() }
}

const RESULT = 'code description result properties replayed task { id action status prompt state }'
const IMAGINE = `mutation ($input: ImagineInput!, $key: String) { imagine(input: $input, idempotencyKey: $key) { ${RESULT} } }`

t.test('each mutation submits once upstream and resolves its task through the loader', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  const buttons = await gql(app, 'query ($id: ID!) { task(id: $id) { buttons { label customId } } }', { id: SEED_TASK_IDS.success })
  const u1 = buttons.body.data!.task.buttons.find((b: { label: string }) => b.label === 'U1').customId as string

  const cases: Array<[string, string, Record<string, unknown>, string]> = [
    ['imagine', 'ImagineInput', { prompt: 'a lighthouse at dawn', state: 'mine' }, 'IMAGINE'],
    ['action', 'ActionInput', { taskId: SEED_TASK_IDS.success, customId: u1 }, 'UPSCALE'],
    ['modal', 'ModalInput', { taskId: SEED_TASK_IDS.modal, prompt: 'zoom out on the lighthouse' }, 'MODAL'],
    ['describe', 'DescribeInput', { base64: IMAGE }, 'DESCRIBE'],
    ['blend', 'BlendInput', { base64Array: [IMAGE, IMAGE], dimensions: 'SQUARE' }, 'BLEND']
  ]
  for (const [field, type, input, action] of cases) {
    const before = sim.calls.length
    const res = await gql(app, `mutation ($input: ${type}!) { ${field}(input: $input) { ${RESULT} } }`, { input })
    t.equal(res.statusCode, 200, `${field}: HTTP 200`)
    t.equal(res.body.errors, undefined, `${field}: no errors`)
    const result = res.body.data![field]
    t.equal(result.code, 1, `${field}: submitted`)
    t.match(result.result, /^\d{16}$/, `${field}: the new task's id`)
    t.equal(result.replayed, false)
    t.equal(result.task.id, result.result, `${field}: its task is resolved`)
    t.equal(result.task.action, action)
    t.equal(result.task.status, 'NOT_START')
    t.equal(submitCalls(sim, field as 'imagine').length, 1, `${field}: one submit upstream`)
    t.strictSame(sim.calls.slice(before).map((call) => call.ids), [[result.result]], `${field}: the task was read through list-by-condition`)

    // The lookup went through the cache: reading the task now asks upstream nothing.
    const read = await gql(app, 'query ($id: ID!) { task(id: $id) { id } }', { id: result.result })
    t.equal(read.body.data!.task.id, result.result)
    t.equal(sim.calls.length, before + 1, `${field}: the next read is a cache hit`)
  }
  t.equal(submitCalls(sim).length, 5)
})

t.test('a GraphQL client can submit, press a button and confirm a modal without leaving GraphQL', async (t) => {
  const { app, clock, sim } = await gatewayOnSimulator(t, { cache: { ttlMs: 1 } })
  const created = await gql(app, IMAGINE, { input: { prompt: 'a fox in the snow' } })
  const id = created.body.data!.imagine.result as string
  clock.advance(sim.options.durationMs)
  const done = await gql(app, 'query ($id: ID!) { task(id: $id) { status final buttons { label customId } } }', { id })
  t.equal(done.body.data!.task.status, 'SUCCESS')
  const v2 = done.body.data!.task.buttons.find((b: { label: string }) => b.label === 'V2').customId
  const varied = await gql(app, `mutation ($input: ActionInput!) { action(input: $input) { ${RESULT} } }`, { input: { taskId: id, customId: v2 } })
  t.equal(varied.body.data!.action.code, 1)
  t.equal(varied.body.data!.action.task.action, 'VARIATION')

  // A button that opens a modal answers 21: the task exists, waiting in MODAL for `modal`.
  const upscaled = await gql(app, 'query ($id: ID!) { task(id: $id) { buttons { label customId } } }', { id: SEED_TASK_IDS.upscaled })
  const zoom = upscaled.body.data!.task.buttons.find((b: { label: string }) => b.label === 'Custom Zoom').customId
  const waiting = await gql(app, `mutation ($input: ActionInput!) { action(input: $input) { ${RESULT} } }`, { input: { taskId: SEED_TASK_IDS.upscaled, customId: zoom } })
  t.equal(waiting.body.data!.action.code, 21)
  t.equal(waiting.body.data!.action.task.status, 'MODAL', 'code 21 resolves its task too')
  const confirmed = await gql(app, `mutation ($input: ModalInput!) { modal(input: $input) { ${RESULT} } }`, { input: { taskId: waiting.body.data!.action.result, prompt: 'zoom out --zoom 2' } })
  t.equal(confirmed.body.data!.modal.code, 1)
  t.equal(confirmed.body.data!.modal.task.prompt, 'zoom out --zoom 2')
})

t.test('a refusal is a SubmitResult with its code, not an error, and has no task', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  const banned = await gql(app, IMAGINE, { input: { prompt: 'something banned' } })
  t.equal(banned.statusCode, 200)
  t.equal(banned.body.errors, undefined)
  t.strictSame(banned.body.data!.imagine, {
    code: 24,
    description: 'May contain banned words',
    result: null,
    properties: { promptEn: 'something banned', bannedWord: 'banned' },
    replayed: false,
    task: null
  })
  // new-api's own checks answer HTTP 400 with code 4: a validation refusal, as clients branch on it.
  const empty = await gql(app, IMAGINE, { input: { prompt: ' ' } })
  t.strictSame(empty.body.data!.imagine, { code: 4, description: 'prompt_is_required ', result: null, properties: null, replayed: false, task: null })
  const unknownTask = await gql(app, 'mutation { action(input: { taskId: "1700000000000999", customId: "MJ::JOB::upsample::1::x" }) { code description task { id } } }')
  t.strictSame(unknownTask.body.data!.action, { code: 4, description: 'task_not_found ', task: null })
  const badBlend = await gql(app, 'mutation ($i: [String!]!) { blend(input: { base64Array: $i }) { code description } }', { i: [IMAGE] })
  t.strictSame(badBlend.body.data!.blend, { code: 4, description: 'base64Array must hold 2 to 5 images' })
  t.equal(submitCalls(sim).length, 4)
  t.equal(sim.calls.length, 0, 'no task lookup for a refusal')
})

t.test('upstream failures are coded GraphQL errors, each after exactly one upstream call', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t, { upstream: { timeoutMs: 300, retries: 3 } })
  const failures: Array<[Parameters<typeof sim.faults.add>[0], string, RegExp]> = [
    [{ route: 'imagine', kind: 'error', status: 500, description: 'proxy exploded', times: 1 }, 'UPSTREAM_ERROR', /^Upstream call failed: submit answered HTTP 500: proxy exploded$/],
    [{ route: 'imagine', kind: 'error', status: 503, description: 'maintenance', times: 1 }, 'UPSTREAM_UNAVAILABLE', /^Upstream is unavailable: submit answered HTTP 503: maintenance$/],
    [{ route: 'imagine', kind: 'error', status: 401, description: 'invalid_token', times: 1 }, 'UPSTREAM_ERROR', /^Upstream call failed: HTTP 401: invalid_token$/],
    [{ route: 'imagine', kind: 'rate-limit', retryAfterSeconds: 1, times: 1 }, 'UPSTREAM_RATE_LIMITED', /HTTP 429/],
    [{ route: 'imagine', kind: 'hang', times: 1 }, 'UPSTREAM_TIMEOUT', /^Upstream did not answer within 300 ms$/],
    [{ route: 'imagine', kind: 'malformed', body: 'html', times: 1 }, 'UPSTREAM_ERROR', /^Upstream call failed: submit answered HTTP 502: non-JSON body$/],
    [{ route: 'imagine', kind: 'malformed', body: 'text', times: 1 }, 'UPSTREAM_BAD_RESPONSE', /^Upstream sent an unusable response: submit answered HTTP 200 with a non-JSON body$/]
  ]
  for (const [fault, code, message] of failures) {
    const before = submitCalls(sim).length
    sim.faults.add(fault)
    const res = await gql(app, IMAGINE, { input: { prompt: 'a fox' } })
    t.equal(res.statusCode, 200, `${code}: executed, so 200`)
    t.equal(res.body.data, null, `${code}: no data`)
    t.equal(res.body.errors?.length, 1)
    t.equal(res.body.errors?.[0]?.extensions?.code, code)
    t.match(res.body.errors?.[0]?.message, message)
    t.strictSame(res.body.errors?.[0]?.path, ['imagine'])
    t.equal(submitCalls(sim).length, before + 1, `${code}: never retried`)
  }
})

t.test('the same idempotencyKey twice: one submit, the same result, the second marked replayed', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  const input = { prompt: 'a red fox', state: 'order-7' }
  const first = await gql(app, IMAGINE, { input, key: 'order-7' })
  const second = await gql(app, IMAGINE, { input: { state: 'order-7', prompt: 'a red fox' }, key: 'order-7' })
  t.equal(submitCalls(sim).length, 1)
  const a = first.body.data!.imagine
  const b = second.body.data!.imagine
  t.equal(a.replayed, false)
  t.equal(b.replayed, true)
  t.strictSame({ ...b, replayed: false }, a, 'the same SubmitResult, task included')
})

t.test('the same key with another input is GW_ERR_IDEMPOTENCY_KEY_REUSED, and nothing is sent', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  await gql(app, IMAGINE, { input: { prompt: 'a red fox' }, key: 'k' })
  const other = await gql(app, IMAGINE, { input: { prompt: 'a red fox', botType: 'NIJI_JOURNEY' }, key: 'k' })
  t.equal(other.statusCode, 200, 'executed: a result with data, even null, is 200')
  t.equal(other.body.data, null)
  t.equal(other.body.errors?.[0]?.extensions?.code, 'GW_ERR_IDEMPOTENCY_KEY_REUSED')
  t.equal(submitCalls(sim).length, 1)
})

t.test('concurrent mutations with one key make one submit; the others get GW_ERR_IDEMPOTENCY_KEY_IN_USE', async (t) => {
  const { app, sim, gate } = await gatewayOnSimulator(t)
  sim.faults.add({ route: 'imagine', kind: 'latency', ms: 1, times: 1 })
  const first = gql(app, IMAGINE, { input: { prompt: 'a fox' }, key: 'double-click' })
  await gate.waitForHeld(1)
  const second = await gql(app, IMAGINE, { input: { prompt: 'a fox' }, key: 'double-click' })
  t.equal(second.statusCode, 200, 'executed: a result with data, even null, is 200')
  t.equal(second.body.errors?.[0]?.extensions?.code, 'GW_ERR_IDEMPOTENCY_KEY_IN_USE')
  gate.releaseAll()
  const answered = await first
  const third = await gql(app, IMAGINE, { input: { prompt: 'a fox' }, key: 'double-click' })
  t.equal(third.body.data!.imagine.replayed, true)
  t.equal(third.body.data!.imagine.result, answered.body.data!.imagine.result)
  t.equal(submitCalls(sim).length, 1)
})

t.test('after an upstream 5xx the same key can be retried, and the retry submits', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  sim.faults.add({ route: 'imagine', kind: 'error', status: 500, times: 1 })
  const failed = await gql(app, IMAGINE, { input: { prompt: 'a fox' }, key: 'k' })
  t.equal(failed.body.errors?.[0]?.extensions?.code, 'UPSTREAM_ERROR')
  sim.faults.add({ route: 'imagine', kind: 'error', status: 503, times: 1 })
  const unavailable = await gql(app, IMAGINE, { input: { prompt: 'a fox' }, key: 'k' })
  t.equal(unavailable.body.errors?.[0]?.extensions?.code, 'UPSTREAM_UNAVAILABLE')
  const retried = await gql(app, IMAGINE, { input: { prompt: 'a fox' }, key: 'k' })
  t.equal(retried.body.data!.imagine.code, 1)
  t.equal(retried.body.data!.imagine.replayed, false)
  t.equal(submitCalls(sim).length, 3)
})

t.test('the same key from two tenants makes two submits', async (t) => {
  const tenants = ['sk-tenant-a-0123456789', 'sk-tenant-b-0123456789']
  const { app, sim } = await gatewayOnSimulator(t, { upstream: { auth: 'passthrough' } }, { keys: tenants })
  const a = await gql(app, IMAGINE, { input: { prompt: 'a fox' }, key: 'k' }, { authorization: `Bearer ${tenants[0]}` })
  const b = await gql(app, IMAGINE, { input: { prompt: 'a fox' }, key: 'k' }, { authorization: `Bearer ${tenants[1]}` })
  t.equal(b.body.data!.imagine.replayed, false)
  t.not(a.body.data!.imagine.result, b.body.data!.imagine.result)
  t.equal(b.body.data!.imagine.task.id, b.body.data!.imagine.result, "each tenant's task is read with its own key")
  t.strictSame(submitCalls(sim).map((call) => call.keyLabel), ['key#0', 'key#1'])
})

t.test('REST and GraphQL share keys: a GraphQL retry of a REST submit is a replay', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  const rest = await app.inject({ method: 'POST', url: '/mj/submit/imagine', headers: { 'idempotency-key': 'from-rest' }, payload: { prompt: 'a fox' } })
  const graph = await gql(app, IMAGINE, { input: { prompt: 'a fox' }, key: 'from-rest' })
  t.equal(graph.body.data!.imagine.replayed, true)
  t.equal(graph.body.data!.imagine.result, rest.json().result)
  t.equal(submitCalls(sim).length, 1)
})

t.test('the mutations of one document run one after another, each its own submit', async (t) => {
  const { app, sim, gate } = await gatewayOnSimulator(t)
  // Count submits as the resolvers start them: run in parallel, both would start before upstream answers either.
  const loader = app.gateway.loader
  const submit = loader.submit.bind(loader)
  let started = 0
  loader.submit = (...args) => { started++; return submit(...args) }
  const document = 'mutation ($a: String!, $b: String!) { a: imagine(input: { prompt: $a }) { result task { prompt } } b: imagine(input: { prompt: $b }) { result task { prompt } } }'
  // Twice: the second run is JIT-compiled (graphql-jit), which must keep mutations serial too.
  for (const round of [1, 2]) {
    started = 0
    sim.faults.add({ route: 'imagine', kind: 'latency', ms: 1, times: 2 })
    const both = gql(app, document, { a: `first ${round}`, b: `second ${round}` })
    await gate.waitForHeld(1)
    t.equal(started, 1, `round ${round}: the second mutation waits for the first`)
    gate.releaseOne()
    await gate.waitForHeld(1)
    t.equal(started, 2)
    gate.releaseOne()
    const res = await both
    t.equal(res.body.data!.a.task.prompt, `first ${round}`)
    t.equal(res.body.data!.b.task.prompt, `second ${round}`)
    t.not(res.body.data!.a.result, res.body.data!.b.result)
  }
  t.equal(submitCalls(sim).length, 4)
})

t.test('mutations keep the limits of the relay: GET refused, auth, rate limit, body bound, key checks', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t, { upstream: { auth: 'passthrough' }, limits: { submitBodyLimitBytes: 1024 }, security: { rateLimitMax: 5 } })
  const auth = { authorization: `Bearer ${sim.defaultKey}` }
  const viaGet = await app.inject({ method: 'GET', url: `/graphql?query=${encodeURIComponent('mutation { imagine(input: { prompt: "x" }) { code } }')}`, headers: auth })
  t.equal(viaGet.statusCode, 405, 'no mutation over GET')
  const anonymous = await gql(app, IMAGINE, { input: { prompt: 'a fox' } })
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED')
  const large = await gql(app, IMAGINE, { input: { prompt: 'x'.repeat(2000) } }, auth)
  t.equal(large.statusCode, 413)
  const badKey = await gql(app, IMAGINE, { input: { prompt: 'a fox' }, key: '' }, auth)
  t.equal(badKey.body.errors?.[0]?.extensions?.code, 'GW_ERR_IDEMPOTENCY_KEY_INVALID')
  t.equal(badKey.body.errors?.[0]?.message, 'Invalid idempotency key: it is empty; send 1 to 255 printable ASCII characters')
  const missing = await gql(app, 'mutation { imagine(input: { state: "no prompt" }) { code } }', {}, auth)
  t.match(missing.body.errors?.[0]?.message, /ImagineInput.prompt/, 'a missing required field fails validation')
  const limited = await gql(app, IMAGINE, { input: { prompt: 'a fox' } }, auth)
  t.equal(limited.statusCode, 429, 'the sixth request of the window')
  t.equal(limited.body.errors?.[0]?.extensions?.code, 'GW_ERR_RATE_LIMITED')
  t.equal(submitCalls(sim).length, 0, 'nothing reached upstream')
})

/** An upstream that records the submit bodies it receives and answers code 1. */
async function recordingUpstream (t: Test): Promise<{ url: string, bodies: unknown[] }> {
  const bodies: unknown[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')))
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 22, description: 'In queue', result: '1750000000000123', properties: { numberOfQueues: 3 } }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies }
}

t.test("inputs reach upstream as upstream's bodies: notifyHook passed through, nulls left out", async (t) => {
  const upstream = await recordingUpstream(t)
  const app = await buildApp({ upstream: { baseUrl: upstream.url, key: 'sk-recording-0123456789' } }, { logger: false })
  t.teardown(() => app.close())
  const res = await gql(app, 'mutation ($input: ImagineInput!) { imagine(input: $input) { code description result properties } }', {
    input: { prompt: 'a fox', notifyHook: 'https://hooks.example/mj', state: 's', botType: null, base64Array: [IMAGE] }
  })
  t.strictSame(res.body.data!.imagine, { code: 22, description: 'In queue', result: '1750000000000123', properties: { numberOfQueues: 3 } })
  await gql(app, 'mutation { describe(input: { link: "https://example.test/a.png" }) { code } }')
  await gql(app, 'mutation { modal(input: { taskId: "1750000000000123", maskBase64: null }) { code } }')
  t.strictSame(upstream.bodies, [
    { prompt: 'a fox', base64Array: [IMAGE], notifyHook: 'https://hooks.example/mj', state: 's' },
    { link: 'https://example.test/a.png' },
    { taskId: '1750000000000123' }
  ])
})
