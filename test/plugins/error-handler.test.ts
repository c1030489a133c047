import t from 'tap'
import { setup } from '../helpers/gateway.js'

const CLIENT_KEY = 'gw-client-key-405-0123456789'

t.test('a wrong method on a known path is 405 with the allowed methods, on every kind of route', async (t) => {
  const { app, upstream } = await setup(t)
  const cases: Array<[string, string, string]> = [
    ['DELETE', '/v1/tasks/1700000000000101', 'GET, HEAD'],
    ['PATCH', '/v1/tasks', 'GET, HEAD, POST'],
    ['POST', '/v1/tasks/stream?ids=1', 'GET, HEAD'],
    ['GET', '/mj/task/list-by-condition', 'POST'],
    ['PUT', '/mj/task/1/fetch', 'GET, HEAD'],
    ['GET', '/mj/submit/imagine', 'POST'],
    ['DELETE', '/healthz', 'GET, HEAD'],
    ['DELETE', '/docs/static/swagger-ui.css', 'GET, HEAD']
  ]
  for (const [method, url, allow] of cases) {
    const res = await app.inject({ method: method as 'GET', url })
    t.equal(res.statusCode, 405, `${method} ${url}`)
    t.equal(res.headers.allow, allow, `${method} ${url}: Allow`)
    const path = url.split('?')[0]
    t.strictSame(res.json(), {
      statusCode: 405,
      code: 'GW_ERR_METHOD_NOT_ALLOWED',
      error: 'Method Not Allowed',
      message: `Method ${method} is not allowed on ${path}; allowed: ${allow}`
    }, `${method} ${url}: coded body`)
  }
  t.equal(upstream.calls.length, 0)
})

t.test('unknown paths stay 404, including a route that passes a request on (a missing static file)', async (t) => {
  const { app } = await setup(t)
  for (const [method, url] of [['GET', '/v2/tasks'], ['DELETE', '/v1/tasks/1/extra'], ['GET', '/docs/static/no-such-file.js'], ['PUT', '/graphql/x']]) {
    const res = await app.inject({ method: method as 'GET', url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(res.headers.allow, undefined, `${method} ${url}: no Allow`)
    t.strictSame(res.json(), { statusCode: 404, code: 'GW_ERR_ROUTE_NOT_FOUND', error: 'Not Found', message: `Route ${method} ${url} not found` })
  }
})

t.test('PUT /graphql is 405 as a coded GraphQL error, like mercurius\'s refusal of a mutation by GET', async (t) => {
  const { app } = await setup(t)
  const put = await app.inject({ method: 'PUT', url: '/graphql', payload: { query: '{ task(id: "1") { id } }' } })
  t.equal(put.statusCode, 405)
  t.equal(put.headers.allow, 'GET, HEAD, POST')
  t.match(put.headers['content-type'], /^application\/json/)
  t.strictSame(put.json(), { errors: [{ message: 'Method PUT is not allowed on /graphql; allowed: GET, HEAD, POST', extensions: { code: 'GW_ERR_METHOD_NOT_ALLOWED' } }] })

  const mutation = await app.inject(`/graphql?query=${encodeURIComponent('mutation { imagine(input: { prompt: "x" }) { code } }')}`)
  t.equal(mutation.statusCode, 405)
  t.equal(mutation.headers.allow, 'POST')
  t.strictSame(mutation.json(), { errors: [{ message: 'Only queries can be sent by GET; send this operation by POST', extensions: { code: 'GW_ERR_METHOD_NOT_ALLOWED' } }] })

  const graphqlResponse = await app.inject({ method: 'DELETE', url: '/graphql', headers: { accept: 'application/graphql-response+json' } })
  t.equal(graphqlResponse.statusCode, 405)
  t.match(graphqlResponse.headers['content-type'], /^application\/graphql-response\+json/, 'in the media type the client asked for')
})

t.test('with CORS on, Allow also names OPTIONS, which every path answers as a preflight', async (t) => {
  const { app } = await setup(t, { security: { corsOrigins: '*' } })
  const res = await app.inject({ method: 'DELETE', url: '/v1/tasks/1' })
  t.equal(res.statusCode, 405)
  t.equal(res.headers.allow, 'GET, HEAD, OPTIONS')
  const unknown = await app.inject({ method: 'DELETE', url: '/v2/tasks' })
  t.equal(unknown.statusCode, 404, 'the preflight route for every path does not make every path known')
})

t.test('with client keys on, a wrong method gets 401 before any route is revealed', async (t) => {
  const { app } = await setup(t, { security: { apiKeys: CLIENT_KEY } })
  const anonymous = await app.inject({ method: 'DELETE', url: '/v1/tasks/1' })
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.headers.allow, undefined)
  const keyed = await app.inject({ method: 'DELETE', url: '/v1/tasks/1', headers: { 'x-api-key': CLIENT_KEY } })
  t.equal(keyed.statusCode, 405)
  t.equal(keyed.headers.allow, 'GET, HEAD')
})
