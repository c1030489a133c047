import t from 'tap'
import { setup } from '../helpers/gateway.js'

const ALL_FIELDS = `id action status progress prompt promptEn description failReason imageUrl state
  submitTime startTime finishTime properties buttons { customId emoji label style type } final progressPercent`

async function gql (app: Awaited<ReturnType<typeof setup>>['app'], query: string, variables?: Record<string, unknown>) {
  const res = await app.inject({ method: 'POST', url: '/graphql', payload: { query, variables } })
  return { status: res.statusCode, body: res.json() }
}

t.test('tasks(ids) returns one entry per id in request order, null for unknown, repeats allowed', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '3' }, { id: '1' })
  const { status, body } = await gql(app, 'query ($ids: [ID!]!) { tasks(ids: $ids) { id } }', { ids: ['1', 'x', '3', '1'] })
  t.equal(status, 200)
  t.same(body, { data: { tasks: [{ id: '1' }, null, { id: '3' }, { id: '1' }] } })
  t.same(upstream.calls.map((c) => c.ids), [['1', 'x', '3']])
})

t.test('Task carries every upstream field, 64-bit timestamps and JSON properties unchanged', async (t) => {
  const { app, upstream } = await setup(t)
  const task = {
    id: '1689231405853400',
    action: 'UPSCALE',
    status: 'SUCCESS',
    progress: '100%',
    prompt: 'a cat',
    promptEn: 'a cat',
    description: 'Submit success',
    failReason: '',
    imageUrl: 'https://api.cometapi.com/mj/image/1689231405853400',
    state: 'mine',
    submitTime: 1689231405853,
    startTime: 1689231410000,
    finishTime: 1689231460123,
    properties: { finalPrompt: 'a cat --v 6', nested: { list: [1, 'two', null] } },
    buttons: [{ customId: 'MJ::JOB::upsample::1::abc', emoji: '🪄', label: 'U1', style: 2, type: 2 }]
  }
  upstream.add(task)
  // Twice: the second run executes the JIT-compiled query.
  for (const run of ['interpreted', 'jit']) {
    const { body } = await gql(app, `{ task(id: "1689231405853400") { ${ALL_FIELDS} } }`)
    t.same(body, { data: { task: { ...task, final: true, progressPercent: 100 } } }, run)
  }
})

t.test('accepts "", null and 0 and open-ended statuses without breaking the response', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add(
    { id: '1', action: '', status: '', progress: '', submitTime: 0, startTime: 0, finishTime: 0, buttons: null, properties: null, failReason: '' },
    { id: '2', action: 'SWAP_FACE', status: 'MODAL', progress: null, prompt: null, imageUrl: null, submitTime: null },
    // Some proxies send "" for an unset time.
    { id: '3', status: 'CANCEL', submitTime: '' as unknown as number }
  )
  for (const run of ['interpreted', 'jit']) {
    const { body } = await gql(app, '{ tasks(ids: ["1", "2", "3"]) { id action status progress submitTime finishTime buttons { label } properties final progressPercent } }')
    t.same(body, {
      data: {
        tasks: [
          { id: '1', action: '', status: '', progress: '', submitTime: 0, finishTime: 0, buttons: null, properties: null, final: false, progressPercent: null },
          { id: '2', action: 'SWAP_FACE', status: 'MODAL', progress: null, submitTime: null, finishTime: null, buttons: null, properties: null, final: false, progressPercent: null },
          { id: '3', action: 'IMAGINE', status: 'CANCEL', progress: '31%', submitTime: null, finishTime: null, buttons: null, properties: null, final: true, progressPercent: 31 }
        ]
      }
    }, run)
  }
})

t.test('task(id) is null for an unknown id', async (t) => {
  const { app } = await setup(t)
  t.same((await gql(app, '{ task(id: "404") { id } }')).body, { data: { task: null } })
})

t.test('serves GET /graphql with the query in the URL', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1', status: 'SUBMITTED' })
  const res = await app.inject({ method: 'GET', url: '/graphql', query: { query: '{ task(id: "1") { status } }' } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { data: { task: { status: 'SUBMITTED' } } })
})

t.test('an upstream failure is an error with extensions.code and null data for the affected ids only', async (t) => {
  const { app, upstream } = await setup(t, { upstream: { timeoutMs: 300, retries: 0 } })
  upstream.add({ id: '1' }, { id: '2' })
  await gql(app, '{ task(id: "1") { id } }')
  // List indices in `path` are numbers, as graphql-js and the spec have them, on POST and GET, interpreted and JIT-compiled.
  const expected = {
    data: { tasks: [{ id: '1' }, null] },
    errors: [{ message: 'Upstream call failed: HTTP 503: scripted failure', locations: [{ line: 1, column: 3 }], path: ['tasks', 1], extensions: { code: 'UPSTREAM_ERROR' } }]
  }
  for (const run of ['interpreted', 'jit']) {
    upstream.script({ kind: 'status', status: 503 })
    const failed = await gql(app, '{ tasks(ids: ["1", "2"]) { id } }')
    t.equal(failed.status, 200)
    t.strictSame(failed.body, expected, `${run}: the cached id still answers, the failed one is an error at its index`)
  }
  upstream.script({ kind: 'status', status: 503 })
  const viaGet = await app.inject({ method: 'GET', url: '/graphql', query: { query: '{ tasks(ids: ["1", "2"]) { id } }' } })
  t.strictSame(viaGet.json(), expected, 'the same over GET')

  upstream.script({ kind: 'hang' })
  const timedOut = await gql(app, '{ task(id: "2") { id } }')
  t.strictSame(timedOut.body, {
    data: { task: null },
    errors: [{ message: 'Upstream did not answer within 300 ms', locations: [{ line: 1, column: 3 }], path: ['task'], extensions: { code: 'UPSTREAM_TIMEOUT' } }]
  })
  t.notOk(JSON.stringify(timedOut.body).includes('stack'), 'no stack trace in the error')
})

t.test('rejects bad input with a clear error and no upstream call', async (t) => {
  const { app, upstream } = await setup(t, { limits: { maxIdsPerRequest: 2 } })
  const tooMany = await gql(app, '{ tasks(ids: ["1", "2", "3"]) { id } }')
  t.equal(tooMany.status, 200, 'a request error is 200 under application/json')
  t.strictSame(tooMany.body, { errors: [{ message: 'Too many ids: 3 given, at most 2 allowed per request', extensions: { code: 'GW_ERR_TOO_MANY_IDS' } }] })
  const missingArg = await gql(app, '{ tasks { id } }')
  t.equal(missingArg.status, 200, 'a validation failure is 200 under application/json (GraphQL over HTTP)')
  t.strictSame(missingArg.body, {
    errors: [{ message: 'Field "tasks" argument "ids" of type "[ID!]!" is required, but it was not provided.', locations: [{ line: 1, column: 3 }], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }]
  }, 'no data, and the code of a request error')
  const unknownField = await gql(app, '{ task(id: "1") { nope } }')
  t.strictSame(unknownField.body, {
    errors: [{ message: 'Cannot query field "nope" on type "Task".', locations: [{ line: 1, column: 19 }], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }]
  })
  const badVariable = await gql(app, 'query ($ids: [ID!]!) { tasks(ids: $ids) { id } }', { ids: [null] })
  t.strictSame(badVariable.body, {
    errors: [{ message: 'Variable "$ids" got invalid value null at "ids[0]"; Expected non-nullable type "ID!" not to be null.', locations: [{ line: 1, column: 8 }], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }]
  }, 'variable values too')
  t.equal(upstream.calls.length, 0)
})
