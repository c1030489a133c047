import t from 'tap'
import { serverAudits } from 'graphql-http'
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
