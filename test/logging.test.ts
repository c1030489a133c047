import t from 'tap'
import { Writable } from 'node:stream'
import { setup, TEST_KEY } from './helpers/gateway.js'

t.test('a trace-level log carries a request id and never the CometAPI key or an Authorization header', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } })
  const { app, upstream } = await setup(t, {}, { logger: { level: 'trace', stream } })
  upstream.add({ id: '1' })
  const clientSecret = 'client-bearer-secret-987'
  await app.inject({ method: 'GET', url: '/v1/tasks/1', headers: { authorization: `Bearer ${clientSecret}`, 'x-request-id': 'req-abc' } })
  upstream.script({ kind: 'status', status: 500 }, { kind: 'raw', body: '<html>oops</html>', contentType: 'text/html' })
  await app.inject({ method: 'POST', url: '/graphql', headers: { authorization: `Bearer ${clientSecret}` }, payload: { query: '{ task(id: "2") { id } }' } })
  await app.inject({ method: 'GET', url: '/v1/tasks/3', headers: { authorization: `Bearer ${clientSecret}` } })

  t.ok(lines.length > 5, `captured ${lines.length} log lines`)
  t.ok(lines.some((line) => JSON.parse(line).reqId === 'req-abc'), 'the client\'s x-request-id is the log\'s request id')
  t.ok(lines.some((line) => /unusable list-by-condition body/.test(line)), 'the bad upstream body was logged')
  for (const line of lines) {
    t.notOk(line.includes(TEST_KEY), 'no CometAPI key')
    t.notOk(line.includes(clientSecret), 'no client credential')
    t.notOk(/bearer /i.test(line), 'no Authorization header value')
  }
})
