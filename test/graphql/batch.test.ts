import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { configFromEnv, normalizeConfig } from '../../src/config.js'
import { setup } from '../helpers/gateway.js'

/*
 * Batched GraphQL requests (a JSON array of operations in one POST), as
 * Apollo's BatchHttpLink and graphql-request's batchRequests send them; the
 * real clients run in test/app/recipes.test.ts.
 */

const GQL_RESPONSE = 'application/graphql-response+json'

const TASKS = 'query Tasks ($ids: [ID!]!) { tasks(ids: $ids) { id status } }'
const TASK = 'query Task ($id: ID!) { task(id: $id) { id status } }'

interface Operation { query?: string, variables?: Record<string, unknown>, operationName?: string }

async function batch (app: FastifyInstance, operations: unknown[], accept?: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/graphql', headers: accept === undefined ? {} : { accept }, payload: operations as unknown as Record<string, unknown> })
}

t.test('GRAPHQL_MAX_BATCH: default 10, read from the environment, checked', async (t) => {
  t.equal(normalizeConfig().graphql.maxBatch, 10)
  t.equal(normalizeConfig(configFromEnv({ GRAPHQL_MAX_BATCH: '3' })).graphql.maxBatch, 3)
  t.throws(() => configFromEnv({ GRAPHQL_MAX_BATCH: '0' }), /Invalid environment variable GRAPHQL_MAX_BATCH: expected an integer from 1 to 1000, got "0"/)
  t.throws(() => normalizeConfig({ graphql: { maxBatch: 2.5 } } as never), /Invalid option graphql.maxBatch/)
})

t.test('a batch is answered in order, one result per operation, its lookups merged into one upstream call', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add(
    { id: '101', status: 'SUCCESS' }, { id: '102', status: 'IN_PROGRESS' }, { id: '103', status: 'FAILURE' },
    { id: '201', status: 'SUCCESS' }, { id: '202', status: 'IN_PROGRESS' }, { id: '203', status: 'FAILURE' }
  )
  // The second round runs the JIT-compiled queries (mercurius compiles on a query's second use).
  for (const [run, [a, b, c]] of [['interpreted', ['101', '102', '103']], ['jit', ['201', '202', '203']]] as const) {
    upstream.calls.length = 0
    const operations: Operation[] = [
      { query: TASKS, variables: { ids: [a, 'nope-' + run] }, operationName: 'Tasks' },
      { query: TASK, variables: { id: b } },
      { query: `{ one: task(id: "${c}") { id status } again: task(id: "${a}") { id } }` }
    ]
    for (const accept of [undefined, GQL_RESPONSE]) {
      const res = await batch(app, operations, accept)
      t.equal(res.statusCode, 200, `${run}, ${accept ?? 'no accept'}: 200`)
      t.strictSame(res.json(), [
        { data: { tasks: [{ id: a, status: 'SUCCESS' }, null] } },
        { data: { task: { id: b, status: 'IN_PROGRESS' } } },
        { data: { one: { id: c, status: 'FAILURE' }, again: { id: a } } }
      ], `${run}: request order, one result per operation`)
    }
    // The first batch went to upstream; the second was answered from the cache, except the
    // unfinished task and the unknown id, whose entries are fresh for CACHE_TTL_MS.
    t.strictSame(upstream.calls.slice(0, 1).map((call) => [...call.ids].sort()), [[a, b, c, 'nope-' + run].sort()], `${run}: one upstream call for all three operations`)
  }
})

t.test('a batch is one request for MAX_IDS_PER_REQUEST: splitting ids across operations does not get around it', async (t) => {
  const { app, upstream } = await setup(t, { limits: { maxIdsPerRequest: 5 } })
  upstream.add({ id: '1' }, { id: '2' }, { id: '3' }, { id: '4' }, { id: '5' }, { id: '6' })
  const split: Operation[] = [
    { query: TASKS, variables: { ids: ['1', '2', '3'] } },
    { query: '{ a: task(id: "4") { id } b: tasks(ids: ["5", "6"]) { id } }' }
  ]
  const refusal = { errors: [{ message: 'Too many ids: 6 given, at most 5 allowed per request', extensions: { code: 'GW_ERR_TOO_MANY_IDS' } }] }

  const plain = await batch(app, split)
  t.equal(plain.statusCode, 200, 'a request error is 200 under application/json')
  t.match(plain.headers['content-type'], /^application\/json/)
  t.strictSame(plain.json(), [refusal, refusal], 'the error once per operation, no data: nothing ran')

  const typed = await batch(app, split, GQL_RESPONSE)
  t.equal(typed.statusCode, 400, 'and 400 under application/graphql-response+json')
  t.strictSame(typed.json(), [refusal, refusal])
  t.equal(upstream.calls.length, 0, 'no operation reached upstream')

  // Each operation alone is within the limit, and so are five ids in all.
  for (const operation of split) t.equal((await batch(app, [operation])).json()[0].errors, undefined)
  upstream.calls.length = 0
  const five = await batch(app, [split[0], { query: '{ a: task(id: "4") { id } b: tasks(ids: ["5"]) { id } }' }])
  const inProgress = (id: string): { id: string, status: string } => ({ id, status: 'IN_PROGRESS' })
  t.strictSame(five.json(), [{ data: { tasks: [inProgress('1'), inProgress('2'), inProgress('3')] } }, { data: { a: { id: '4' }, b: [{ id: '5' }] } }])
})

t.test('a batch is one request for GRAPHQL_MAX_FIELDS', async (t) => {
  const { app, upstream } = await setup(t, { graphql: { maxFields: 10 } })
  upstream.add({ id: '1' })
  const six = '{ tasks(ids: ["1"]) { id status progress action prompt } }'
  t.strictSame((await batch(app, [{ query: six }])).json(), [{ data: { tasks: [{ id: '1', status: 'IN_PROGRESS', progress: '31%', action: 'IMAGINE', prompt: null }] } }], 'six fields alone are fine')
  upstream.calls.length = 0

  const res = await batch(app, [{ query: six }, { query: six }], GQL_RESPONSE)
  t.equal(res.statusCode, 400)
  const refusal = { errors: [{ message: 'The batch\'s 2 operations select 12 fields together (aliases and fragment uses counted); at most 10 allowed per request (GRAPHQL_MAX_FIELDS)', extensions: { code: 'GW_ERR_QUERY_TOO_COMPLEX' } }] }
  t.strictSame(res.json(), [refusal, refusal])
  t.equal(upstream.calls.length, 0)
})

t.test('the rate limit counts a batch once, as the one request it is', async (t) => {
  const { app, upstream } = await setup(t, { security: { rateLimitMax: 2 } })
  upstream.add({ id: '1' })
  const three = [{ query: TASK, variables: { id: '1' } }, { query: TASK, variables: { id: '1' } }, { query: TASK, variables: { id: '1' } }]
  const first = await batch(app, three)
  t.equal(first.statusCode, 200)
  t.equal(first.json().length, 3)
  t.equal(first.headers['x-ratelimit-remaining'], '1', 'three operations, one request counted')
  const second = await batch(app, three)
  t.equal(second.headers['x-ratelimit-remaining'], '0')
  const third = await batch(app, three)
  t.equal(third.statusCode, 429)
  t.equal(third.json().errors[0].extensions.code, 'GW_ERR_RATE_LIMITED')
})

t.test('a batch over GRAPHQL_MAX_BATCH is 413 GW_ERR_BATCH_TOO_LARGE and nothing runs', async (t) => {
  const { app, upstream } = await setup(t, { graphql: { maxBatch: 3 } })
  upstream.add({ id: '1' })
  const operation = { query: TASK, variables: { id: '1' } }
  for (const accept of [undefined, GQL_RESPONSE]) {
    const res = await batch(app, [operation, operation, operation, operation], accept)
    t.equal(res.statusCode, 413, `${accept ?? 'no accept'}: a size limit, like the body's`)
    t.strictSame(res.json(), { errors: [{ message: 'A batch of 4 GraphQL operations; at most 3 allowed per request (GRAPHQL_MAX_BATCH)', extensions: { code: 'GW_ERR_BATCH_TOO_LARGE' } }] })
  }
  // Counted before the body's schema is checked: 100000 entries are not walked.
  const huge = await app.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' }, payload: `[${Array(100_000).fill('1').join(',')}]` })
  t.equal(huge.statusCode, 413)
  t.equal(huge.json().errors[0].extensions.code, 'GW_ERR_BATCH_TOO_LARGE')
  t.equal(upstream.calls.length, 0)

  const atBound = await batch(app, [operation, operation, operation])
  t.equal(atBound.statusCode, 200)
  t.equal(atBound.json().length, 3)

  const empty = await batch(app, [], GQL_RESPONSE)
  t.equal(empty.statusCode, 400)
  t.strictSame(empty.json(), { errors: [{ message: 'A batch must hold at least one operation', extensions: { code: 'GW_ERR_BAD_REQUEST' } }] })
})

t.test('each operation of a batch fails on its own, without data when it did not run', async (t) => {
  const { app, upstream } = await setup(t, { graphql: { maxDepth: 2 } })
  upstream.add({ id: '1', status: 'SUCCESS' })
  const res = await batch(app, [
    { query: TASK, variables: { id: '1' } },
    { query: '{ task(id: "1") { nope } }' },
    { query: '{ task(' },
    { variables: { id: '1' } },
    { query: '{ task(id: "1") { buttons { label } } }' },
    { query: TASK, variables: { id: true } },
    { query: '{ tasks(ids: ["1", "bad id!"]) { id } }' }
  ], GQL_RESPONSE)
  t.equal(res.statusCode, 200, 'the batch ran: 200, each result saying how its operation went')
  const results = res.json() as Array<{ data?: unknown, errors?: Array<{ message: string, path?: unknown, extensions?: { code?: string } }> }>
  t.equal(results.length, 7)
  t.strictSame(results[0], { data: { task: { id: '1', status: 'SUCCESS' } } })
  t.equal(results[1]!.errors![0]!.message, 'Cannot query field "nope" on type "Task".')
  t.match(results[2]!.errors![0]!.message, /^Syntax Error/)
  t.equal(results[3]!.errors![0]!.message, 'Unknown query', 'no query: an error result, not a serialized exception')
  t.equal(results[4]!.errors![0]!.extensions!.code, 'GW_ERR_QUERY_TOO_COMPLEX', 'the depth limit holds per operation')
  t.match(results[5]!.errors![0]!.message, /Variable "\$id" got invalid value true/)
  for (const i of [1, 2, 3, 4, 5]) {
    t.notOk('data' in results[i]!, `operation ${i} did not run: no data entry`)
    t.strictSame(Object.keys(results[i]!), ['errors'], `operation ${i}: errors only`)
  }
  t.strictSame(results[6], {
    data: { tasks: [{ id: '1' }, null] },
    errors: [{ message: 'ids[1] has characters outside A-Z a-z 0-9 _ . : -', locations: [{ line: 1, column: 3 }], path: ['tasks', 1], extensions: { code: 'GW_ERR_INVALID_ID' } }]
  }, 'a bad id nulls its own item only')
  t.strictSame(upstream.calls.map((call) => call.ids), [['1']])
})

t.test('GET stays single-operation: a batch in the query string is refused and nothing runs', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1' })
  const operations = JSON.stringify([{ query: '{ task(id: "1") { id } }' }, { query: '{ task(id: "1") { id } }' }])
  for (const accept of [undefined, GQL_RESPONSE]) {
    const res = await app.inject({ url: `/graphql?query=${encodeURIComponent(operations)}`, headers: accept === undefined ? {} : { accept } })
    t.equal(res.statusCode, accept === undefined ? 200 : 400)
    t.strictSame(res.json(), { errors: [{ message: 'query must be a GraphQL document', extensions: { code: 'GW_ERR_BAD_REQUEST' } }] })
  }
  t.equal(upstream.calls.length, 0)
  const single = await app.inject({ url: `/graphql?query=${encodeURIComponent('{ task(id: "1") { id } }')}` })
  t.strictSame(single.json(), { data: { task: { id: '1' } } })
})
