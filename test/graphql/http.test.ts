import t from 'tap'
import { serverAudits } from 'graphql-http'
import { errors } from '../../src/errors.js'
import { setup } from '../helpers/gateway.js'

t.test('passes the graphql-http audit suite: every MUST and at least 20 SHOULD audits', async (t) => {
  const { app } = await setup(t)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const tally: Record<string, { ok: number, total: number, failed: string[] }> = {}
  for (const audit of serverAudits({ url: `${url}/graphql`, fetchFn: fetch })) {
    const level = audit.name.split(' ')[0]!
    const entry = tally[level] ??= { ok: 0, total: 0, failed: [] }
    const result = await audit.fn()
    entry.total++
    if (result.status === 'ok') entry.ok++
    else entry.failed.push(`${audit.name}: ${result.reason}`)
  }
  t.comment(Object.entries(tally).map(([level, e]) => `${level}: ${e.ok}/${e.total}`).join(', '))
  for (const e of Object.values(tally)) for (const failed of e.failed) t.comment(`not met: ${failed}`)
  t.same(tally.MUST!.failed, [], 'every MUST audit passes')
  t.ok(tally.SHOULD!.ok >= 20, `at least 20 SHOULD audits pass (${tally.SHOULD!.ok}/${tally.SHOULD!.total})`)
})

t.test('answers application/graphql-response+json in kind, with 400 and no data for a request error', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1' })
  const headers = { accept: 'application/graphql-response+json', 'content-type': 'application/json' }
  const ok = await app.inject({ method: 'POST', url: '/graphql', headers, payload: { query: '{ task(id: "1") { id } }', extensions: null } })
  t.equal(ok.statusCode, 200)
  t.match(ok.headers['content-type'], /^application\/graphql-response\+json/)
  t.same(ok.json(), { data: { task: { id: '1' } } })

  const invalid = await app.inject({ method: 'POST', url: '/graphql', headers, payload: { query: '{ task(id: "1") { nope } }' } })
  t.equal(invalid.statusCode, 400)
  t.match(invalid.headers['content-type'], /^application\/graphql-response\+json/)
  t.notOk('data' in invalid.json(), 'no data entry')

  const legacy = await app.inject({ method: 'POST', url: '/graphql', headers: { accept: 'application/json' }, payload: { query: '{ task(' } })
  t.equal(legacy.statusCode, 200, 'a parse error is 200 under application/json')
  t.match(legacy.headers['content-type'], /^application\/json/)
  t.match(legacy.json(), { errors: [{ message: /Syntax Error/ }] })
  t.notOk('data' in legacy.json())
})

t.test('a subscription over HTTP is a 400 that says where subscriptions run', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1' })
  const expected = {
    errors: [{
      message: 'Subscriptions run over WebSocket at /graphql (graphql-transport-ws) or as Server-Sent Events at /v1/tasks/stream, not over HTTP POST',
      extensions: { code: 'GW_ERR_SUBSCRIPTION_TRANSPORT' }
    }]
  }
  for (const accept of ['application/json', 'application/graphql-response+json']) {
    const res = await app.inject({ method: 'POST', url: '/graphql', headers: { accept }, payload: { query: 'subscription { taskUpdates(ids: ["1"]) { id } }' } })
    t.equal(res.statusCode, 400, accept)
    t.strictSame(res.json(), expected)
  }
  const named = 'query Q { task(id: "1") { id } } subscription S { taskUpdates(ids: ["1"]) { id } }'
  const picked = await app.inject({ method: 'POST', url: '/graphql', payload: { query: named, operationName: 'S' } })
  t.strictSame([picked.statusCode, picked.json()], [400, expected], 'the operation picked by name')
  const asGraphQL = await app.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/graphql' }, payload: 'subscription { taskUpdates(ids: ["1"]) { id } }' })
  t.strictSame([asGraphQL.statusCode, asGraphQL.json()], [400, expected], 'an application/graphql body')
  const query = await app.inject({ method: 'POST', url: '/graphql', payload: { query: named, operationName: 'Q' } })
  t.strictSame([query.statusCode, query.json()], [200, { data: { task: { id: '1' } } }], 'the query of the same document runs')
  t.equal(upstream.calls.length, 1)
})

t.test('a bad id among good ones is an error for its own item: 200 with the others\' data, whatever the media type', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1700000000000101', status: 'SUCCESS' })
  const query = '{ tasks(ids: ["1700000000000101", "bad id!"]) { id } }'
  // Twice per media type: the query runs interpreted first, then JIT-compiled.
  for (const accept of [undefined, 'application/json', 'application/graphql-response+json', 'application/graphql-response+json']) {
    const res = await app.inject({ method: 'POST', url: '/graphql', headers: accept === undefined ? {} : { accept }, payload: { query } })
    t.equal(res.statusCode, 200, `${accept ?? 'no accept'}: a result with data is 2xx`)
    t.strictSame(res.json(), {
      data: { tasks: [{ id: '1700000000000101' }, null] },
      errors: [{ message: 'ids[1] has characters outside A-Z a-z 0-9 _ . : -', locations: [{ line: 1, column: 3 }], path: ['tasks', 1], extensions: { code: 'GW_ERR_INVALID_ID' } }]
    })
  }
  const single = await app.inject({ method: 'POST', url: '/graphql', headers: { accept: 'application/graphql-response+json' }, payload: { query: '{ task(id: "bad id!") { id } }' } })
  t.equal(single.statusCode, 200)
  t.strictSame(single.json().data, { task: null })
  t.equal(single.json().errors[0].extensions.code, 'GW_ERR_INVALID_ID')
  t.strictSame(upstream.calls.map((call) => call.ids), [['1700000000000101']], 'the bad id never reaches upstream; the good one once, then from the cache')
})

t.test('every well-formed request is 200 under application/json; under graphql-response+json a request error is 400 without data', async (t) => {
  const { app, upstream } = await setup(t, { limits: { maxIdsPerRequest: 2 }, graphql: { maxDepth: 2, maxFields: 5 } })
  const requests: Array<[string, Record<string, unknown>, string | undefined]> = [
    ['too many ids', { query: '{ tasks(ids: ["1", "2", "3"]) { id } }' }, 'GW_ERR_TOO_MANY_IDS'],
    ['too many ids in variables', { query: 'query ($ids: [ID!]!) { tasks(ids: $ids) { id } }', variables: { ids: ['1', '2', '3'] } }, 'GW_ERR_TOO_MANY_IDS'],
    ['too deep', { query: '{ task(id: "1") { buttons { label } } }' }, 'GW_ERR_QUERY_TOO_COMPLEX'],
    ['too many fields', { query: '{ task(id: "1") { id status progress action prompt } }' }, 'GW_ERR_QUERY_TOO_COMPLEX'],
    ['a JSON AST for a query', { query: '{"kind":"Document","definitions":[]}' }, 'GW_ERR_BAD_REQUEST'],
    ['a validation error', { query: '{ task(id: "1") { nope } }' }, 'GRAPHQL_VALIDATION_FAILED'],
    ['a syntax error', { query: '{ task(' }, 'GRAPHQL_VALIDATION_FAILED'],
    ['a variable of the wrong type', { query: 'query ($id: ID!) { task(id: $id) { id } }', variables: { id: true } }, 'GRAPHQL_VALIDATION_FAILED']
  ]
  for (const [label, payload, code] of requests) {
    for (const [accept, status] of [[undefined, 200], ['application/json', 200], ['application/graphql-response+json', 400]] as const) {
      const res = await app.inject({ method: 'POST', url: '/graphql', headers: accept === undefined ? {} : { accept }, payload })
      t.equal(res.statusCode, status, `${label}, ${accept ?? 'no accept'}: ${status}`)
      t.notOk('data' in res.json(), `${label}: no data entry`)
      t.equal(res.json().errors[0].extensions?.code, code, `${label}: code`)
    }
  }
  t.equal(upstream.calls.length, 0, 'nothing ran')

  // HTTP-level refusals keep their status on both media types.
  for (const accept of ['application/json', 'application/graphql-response+json']) {
    const wrongType = await app.inject({ method: 'POST', url: '/graphql', headers: { accept, 'content-type': 'text/plain' }, payload: '{ task(id: "1") { id } }' })
    t.equal(wrongType.statusCode, 415)
    const malformed = await app.inject({ method: 'POST', url: '/graphql', headers: { accept, 'content-type': 'application/json' }, payload: '{"query": ' })
    t.equal(malformed.statusCode, 400)
    const wrongShape = await app.inject({ method: 'POST', url: '/graphql', headers: { accept }, payload: { query: 1 } })
    t.equal(wrongShape.statusCode, 400, 'a body of the wrong shape is not a well-formed request')
  }
})

t.test('a result that carries data is 200 even when data is null', async (t) => {
  const { app } = await setup(t)
  // `tasks` is non-null, so an error of the whole field nulls the whole of data: a bug, or a
  // coded error that mercurius would otherwise send with its own status (503 here).
  for (const [thrown, code] of [[new TypeError('boom'), 'GW_ERR_INTERNAL'], [new errors.Overloaded('too busy'), 'GW_ERR_OVERLOADED']] as const) {
    app.gateway.loader.loadMany = () => { throw thrown }
    // Twice each: interpreted, then JIT-compiled.
    for (const accept of ['application/json', 'application/json', 'application/graphql-response+json', 'application/graphql-response+json']) {
      const res = await app.inject({ method: 'POST', url: '/graphql', headers: { accept }, payload: { query: `{ tasks(ids: ["1"]) { id } } # ${code}` } })
      t.equal(res.statusCode, 200, `${code}, ${accept}: executed, so 2xx`)
      const body = res.json()
      t.equal(body.data, null, 'a data entry, null')
      t.strictSame(body.errors.map(({ path, extensions }: Record<string, unknown>) => ({ path, extensions })), [{ path: ['tasks'], extensions: { code } }])
    }
  }
})
