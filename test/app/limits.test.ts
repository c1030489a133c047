import t from 'tap'
import type { InjectOptions } from 'fastify'
import { configFromEnv, normalizeConfig } from '../../src/config.js'
import { setup } from '../helpers/gateway.js'

const GQL_RESPONSE = 'application/graphql-response+json'

/**
 * A GraphQL POST asking for application/graphql-response+json, where a request
 * error is a 400 (under application/json it is a 200: test/graphql/http.test.ts).
 */
function gql (query: string, variables?: Record<string, unknown>): InjectOptions {
  return { method: 'POST', url: '/graphql', headers: { accept: GQL_RESPONSE }, payload: variables === undefined ? { query } : { query, variables } }
}

/** The message of a gateway error body, a drop-in error body or a GraphQL error response. */
function messageOf (body: any): string {
  return body?.message ?? body?.description ?? body?.errors?.[0]?.message
}

t.test('documented defaults', async (t) => {
  const config = normalizeConfig()
  t.equal(config.limits.maxIdsPerRequest, 500)
  t.equal(config.limits.maxIdLength, 64)
  t.equal(config.limits.bodyLimitBytes, 1 << 20)
  t.equal(config.graphql.maxDepth, 15)
  t.equal(config.graphql.maxFields, 500)
  t.equal(config.security.rateLimitMax, undefined, 'rate limit off')
  t.equal(config.security.rateLimitWindowMs, 60_000)
  const fromEnv = normalizeConfig(configFromEnv({ GRAPHQL_MAX_DEPTH: '4', GRAPHQL_MAX_FIELDS: '40', GRAPHQL_INTROSPECTION: 'false', GRAPHIQL_ENABLED: 'true', DOCS_ENABLED: '0' }))
  t.match(fromEnv.graphql, { maxDepth: 4, maxFields: 40, introspection: false })
  t.match(fromEnv.security, { graphiql: true, docs: false })
})

t.test('too many ids: 400 on every surface, before any upstream call', async (t) => {
  const { app, upstream } = await setup(t, { limits: { maxIdsPerRequest: 5 } })
  const six = ['1', '2', '3', '4', '5', '6']
  const cases: InjectOptions[] = [
    { url: `/v1/tasks?ids=${six.join(',')}` },
    { method: 'POST', url: '/v1/tasks', payload: { ids: six } },
    { method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: six } },
    gql('query ($ids: [ID!]!) { tasks(ids: $ids) { id } }', { ids: six }),
    gql(`{ tasks(ids: ${JSON.stringify(six)}) { id } }`)
  ]
  for (const request of cases) {
    const res = await app.inject(request)
    t.equal(res.statusCode, 400, `${request.method ?? 'GET'} ${request.url}`)
    t.match(messageOf(res.json()), /Too many ids: 6 given, at most 5/)
  }
  const ok = await app.inject({ url: '/v1/tasks?ids=1,2,3,4,5' })
  t.equal(ok.statusCode, 200, 'the limit itself is allowed')
  t.equal(upstream.calls.length, 1)
})

t.test('a bad id gets 400 naming its position', async (t) => {
  const { app, upstream } = await setup(t, { limits: { maxIdLength: 10 } })
  const bad: Array<[unknown, RegExp]> = [
    ['', /ids\[3\] is empty/],
    ['x'.repeat(11), /ids\[3\] is longer than 10 characters/],
    ['12/34', /ids\[3\] has characters outside/],
    ['1 2', /ids\[3\] has characters outside/],
    ['ünï', /ids\[3\] has characters outside/],
    ['..%2F', /ids\[3\] has characters outside/]
  ]
  for (const [id, message] of bad) {
    const ids = ['1', '2', '3', id]
    for (const request of [
      { method: 'POST' as const, url: '/v1/tasks', payload: { ids } },
      { url: '/v1/tasks?ids=' + ids.map((x) => encodeURIComponent(String(x))).join(',') },
      { method: 'POST' as const, url: '/mj/task/list-by-condition', payload: { ids } },
      gql('query ($ids: [ID!]!) { tasks(ids: $ids) { id } }', { ids })
    ]) {
      const res = await app.inject(request)
      if (request.url === '/graphql') {
        t.equal(res.statusCode, 200, 'GraphQL: a bad id is an error for its own item, beside the others\' answers')
        t.match(res.json(), { data: { tasks: [null, null, null, null] }, errors: [{ message, path: ['tasks', 3], extensions: { code: 'GW_ERR_INVALID_ID' } }] })
      } else {
        t.equal(res.statusCode, 400, `${request.url} ${JSON.stringify(id)}`)
        t.match(messageOf(res.json()), message)
      }
    }
  }
  const nonString = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { ids: ['1', 2] } })
  t.equal(nonString.statusCode, 400)
  t.match(messageOf(nonString.json()), /ids\[1\] must be a string/)

  for (const url of ['/v1/tasks/' + 'x'.repeat(11), '/v1/tasks/a%20b', '/mj/task/a%2Fb/fetch']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 400, url)
    t.match(messageOf(res.json()), /id/)
  }
  t.strictSame([...new Set(upstream.calls.flatMap((call) => call.ids))], ['1', '2', '3'], 'only GraphQL\'s well-formed ids reached upstream')
})

t.test('body size, malformed JSON and content type: 413, 400, 415, all JSON with the gateway\'s codes, never fastify\'s', async (t) => {
  const { app, upstream } = await setup(t, { limits: { bodyLimitBytes: 4096, submitBodyLimitBytes: 4096 } })
  /** The code of a gateway error body or a GraphQL error response. */
  const codeOf = (body: any): string | undefined => body?.code ?? body?.errors?.[0]?.extensions?.code
  for (const url of ['/v1/tasks', '/mj/task/list-by-condition', '/graphql']) {
    const big = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ ids: ['1'], pad: 'x'.repeat(5000) }) })
    t.equal(big.statusCode, 413, `${url}: 413`)
    t.match(big.headers['content-type'], /json/)
    t.equal(codeOf(big.json()), 'GW_ERR_BODY_TOO_LARGE')
    t.equal(messageOf(big.json()), 'Request body is larger than this route\'s limit of 4096 bytes')

    const malformed = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: '{"ids": [' })
    t.equal(malformed.statusCode, 400, `${url}: malformed JSON`)
    t.match(malformed.headers['content-type'], /json/)
    if (url.startsWith('/mj/')) t.strictSame(malformed.json(), { description: 'do_request_failed ', type: 'upstream_error', code: 4 }, 'the drop-in route answers as upstream')
    else t.equal(codeOf(malformed.json()), 'GW_ERR_BAD_REQUEST', `${url}: malformed JSON is coded`)

    const empty = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: '' })
    t.equal(empty.statusCode, 400, `${url}: empty JSON body`)
    if (!url.startsWith('/mj/')) t.equal(codeOf(empty.json()), 'GW_ERR_BAD_REQUEST')

    const accepted = url === '/graphql' ? 'application/json or application/graphql' : 'application/json'
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
      const res = await app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload: 'ids=1' })
      t.equal(res.statusCode, 415, `${url}: ${type}`)
      t.match(res.headers['content-type'], /json/)
      t.equal(codeOf(res.json()), 'GW_ERR_UNSUPPORTED_MEDIA_TYPE')
      t.equal(messageOf(res.json()), `Unsupported Media Type: ${JSON.stringify(type)}; send ${accepted}`, `${url}: names what it accepts`)
    }
  }
  t.equal(upstream.calls.length, 0)
})

t.test('no error body carries a code from outside the gateway\'s table', async (t) => {
  const { app } = await setup(t)
  const { errors } = await import('../../src/errors.js')
  const table = new Set<string>(Object.values(errors).map((E) => new E('x', 1).code))
  const requests: InjectOptions[] = [
    { method: 'POST', url: '/v1/tasks', headers: { 'content-type': 'application/json' }, payload: '{' },
    { method: 'POST', url: '/v1/tasks', headers: { 'content-type': 'application/json' }, payload: '' },
    { method: 'POST', url: '/v1/tasks', headers: { 'content-type': 'application/json' }, payload: '{"ids": "1"}' },
    { method: 'POST', url: '/v1/tasks', headers: { 'content-type': 'text/csv' }, payload: '1' },
    { method: 'GET', url: '/v1/tasks/%E0%A4%A' },
    { method: 'GET', url: '/no/such/route' }
  ]
  for (const request of requests) {
    const res = await app.inject(request)
    t.ok(res.statusCode >= 400, `${request.method} ${request.url}: ${res.statusCode}`)
    t.ok(table.has(res.json().code), `${request.method} ${request.url}: ${res.json().code} is the gateway's`)
  }
})

t.test('GraphQL: depth limit', async (t) => {
  const { app } = await setup(t, { graphql: { maxDepth: 2 } })
  const ok = await app.inject(gql('{ tasks(ids: ["1"]) { id } }'))
  t.equal(ok.statusCode, 200)
  const deep = await app.inject(gql('{ tasks(ids: ["1"]) { buttons { label } } }'))
  t.equal(deep.statusCode, 400)
  t.strictSame(deep.json(), { errors: [{ message: 'Query is 3 levels deep; at most 2 allowed (GRAPHQL_MAX_DEPTH)', extensions: { code: 'GW_ERR_QUERY_TOO_COMPLEX' } }] })
  // Fragments do not hide depth.
  const viaFragment = await app.inject(gql('{ tasks(ids: ["1"]) { ...F } } fragment F on Task { buttons { ... on Button { label } } }'))
  t.equal(viaFragment.statusCode, 400)

  // The default fits GraphiQL's introspection query.
  const { app: dflt } = await setup(t)
  const { getIntrospectionQuery } = await import('graphql')
  const intro = await dflt.inject(gql(getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true })))
  t.equal(intro.statusCode, 200)
  t.ok(intro.json().data.__schema.types.length > 0)
})

t.test('GraphQL: 1000 aliased tasks fields do not fan out', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1' })
  const aliases = Array.from({ length: 1000 }, (_, i) => `a${i}: tasks(ids: ["${i}"]) { id }`).join('\n')
  const res = await app.inject(gql(`{ ${aliases} }`))
  t.equal(res.statusCode, 400)
  t.strictSame(res.json(), { errors: [{ message: 'Query selects 2000 fields (aliases and fragment uses counted); at most 500 allowed (GRAPHQL_MAX_FIELDS)', extensions: { code: 'GW_ERR_QUERY_TOO_COMPLEX' } }] })

  // Fragments multiply: 4 uses of a fragment with 4 uses of a fragment with 40 fields.
  const leaf = Array.from({ length: 40 }, (_, i) => `f${i}: id`).join(' ')
  const amplified = `{ tasks(ids: ["1"]) { ...A } } fragment A on Task { ...B a1: buttons { label } ...B ...B ...B } fragment B on Task { ${leaf} }`
  const amp = await app.inject(gql(amplified))
  t.equal(amp.statusCode, 200, 'repeated spreads of the same fields merge and are fine under the limit')
  const afterAmp = upstream.calls.length
  const wide = `{ a: tasks(ids: ["1"]) { ...B } b: tasks(ids: ["1"]) { ...B } c: tasks(ids: ["1"]) { ...B } d: tasks(ids: ["1"]) { ...B } e: tasks(ids: ["1"]) { ...B } f: tasks(ids: ["1"]) { ...B } g: tasks(ids: ["1"]) { ...B } h: tasks(ids: ["1"]) { ...B } i: tasks(ids: ["1"]) { ...B } j: tasks(ids: ["1"]) { ...B } k: tasks(ids: ["1"]) { ...B } l: tasks(ids: ["1"]) { ...B } m: tasks(ids: ["1"]) { ...B } } fragment B on Task { ${leaf} }`
  const wideRes = await app.inject(gql(wide))
  t.equal(wideRes.statusCode, 400, '13 uses of a 40-field fragment count as 533 fields')

  // Within the field limit, the id total across all tasks fields is bounded by MAX_IDS_PER_REQUEST.
  const ids = Array.from({ length: 100 }, (_, i) => `"${i}"`).join(',')
  const many = Array.from({ length: 6 }, (_, i) => `a${i}: tasks(ids: [${ids}]) { id }`).join(' ')
  const total = await app.inject(gql(`{ ${many} }`))
  t.equal(total.statusCode, 400)
  t.strictSame(total.json(), { errors: [{ message: 'Too many ids: 600 given, at most 500 allowed per request', extensions: { code: 'GW_ERR_TOO_MANY_IDS' } }] })
  const viaVariables = await app.inject(gql('query ($a: [ID!]!, $b: [ID!]!) { x: tasks(ids: $a) { id } y: tasks(ids: $b) { id } z: task(id: "1") { id } }',
    { a: Array.from({ length: 300 }, (_, i) => String(i)), b: Array.from({ length: 200 }, (_, i) => String(i)) }))
  t.equal(viaVariables.statusCode, 400, '300 + 200 + 1 ids')
  t.equal(upstream.calls.length, afterAmp, 'no rejected query reached upstream')
  upstream.calls.length = 0

  const fine = await app.inject(gql(Array.from({ length: 50 }, (_, i) => `a${i}: task(id: "77") { id }`).join(' ').replace(/^/, '{ ').concat(' }')))
  t.equal(fine.statusCode, 200)
  t.same(upstream.calls.map((c) => c.ids), [['77']], '50 aliases of one id: one upstream call')
})

t.test('GraphQL: ids count however they are written: literals, variables and variable defaults', async (t) => {
  const { app, upstream } = await setup(t, { limits: { maxIdsPerRequest: 10 } })
  upstream.add({ id: '1' })
  const list = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => String(from + i))
  const defaults = `query ($a: [ID!] = ${JSON.stringify(list(6))}, $b: [ID!] = ${JSON.stringify(list(5, 100))}) { a: tasks(ids: $a) { id } b: tasks(ids: $b) { id } }`
  const refused = await app.inject(gql(defaults))
  t.equal(refused.statusCode, 400, 'two defaults of 6 and 5 ids')
  t.strictSame(refused.json(), { errors: [{ message: 'Too many ids: 11 given, at most 10 allowed per request', extensions: { code: 'GW_ERR_TOO_MANY_IDS' } }] })
  const mixed = await app.inject(gql(`query ($a: [ID!] = ${JSON.stringify(list(6))}, $x: ID = "9") { a: tasks(ids: $a) { id } b: tasks(ids: ["1", "2", "3"]) { id } c: task(id: "1") { id } d: tasks(ids: [$x, "4"]) { id } }`))
  t.equal(mixed.json().errors[0].message, 'Too many ids: 12 given, at most 10 allowed per request', '6 by default, then 3 + 1 + 2 written')
  t.equal(upstream.calls.length, 0, 'no refused query reached upstream')

  // A given variable replaces its default.
  const given = await app.inject(gql(defaults, { a: ['1'] }))
  t.equal(given.statusCode, 200, '1 given + 5 by default')
  t.strictSame(given.json(), { data: { a: [{ id: '1' }], b: [null, null, null, null, null] } })
  const more = await app.inject(gql(defaults, { a: list(6), b: list(5) }))
  t.equal(more.json().errors[0].message, 'Too many ids: 11 given, at most 10 allowed per request', 'given values count as themselves')
  const nulled = await app.inject(gql(`query ($a: [ID!] = ${JSON.stringify(list(20))}) { tasks(ids: ["1"]) { id } other: tasks(ids: $a) { id } }`, { a: null }))
  t.strictSame(nulled.json().errors.map((e: { message: string }) => e.message), ['Argument "ids" of non-null type "[ID!]!" must not be null.'],
    'an explicit null replaces the default of 20: it fails as null, not as too many ids')
})

t.test('GraphQL: the query must be GraphQL text, not a JSON-encoded AST', async (t) => {
  const { app } = await setup(t)
  const ast = JSON.stringify({ kind: 'Document', definitions: [{ kind: 'OperationDefinition', operation: 'query', selectionSet: { kind: 'SelectionSet', selections: [] } }] })
  for (const query of [ast, 'null', '1', '[]', '"x"', '{"kind":"Document"}']) {
    for (const request of [gql(query), { method: 'POST' as const, url: '/graphql', headers: { 'content-type': 'application/graphql', accept: GQL_RESPONSE }, payload: query }]) {
      const res = await app.inject(request)
      t.equal(res.statusCode, 400, query)
      t.match(res.json(), { errors: [{ message: /GraphQL document/ }] })
    }
  }
})

t.test('production: introspection, GraphiQL and /docs are off unless enabled', async (t) => {
  const introspect = gql('{ __schema { queryType { name } } }')
  const typeProbe = gql('{ __type(name: "Task") { name } }')

  const { app: dev } = await setup(t)
  t.equal((await dev.inject(introspect)).json().data.__schema.queryType.name, 'Query')
  t.equal((await dev.inject({ url: '/graphiql' })).statusCode, 200)
  t.equal((await dev.inject({ url: '/docs' })).statusCode, 200)
  t.equal((await dev.inject({ url: '/openapi.yaml' })).statusCode, 200)

  const { app: prod, upstream } = await setup(t, { production: true })
  upstream.add({ id: '1' })
  for (const request of [introspect, typeProbe]) {
    const res = await prod.inject(request)
    t.notOk(res.json().data, 'no data')
    t.match(res.json().errors[0].message, /introspection/i)
  }
  t.equal((await prod.inject({ url: '/graphiql' })).statusCode, 404)
  t.equal((await prod.inject({ url: '/docs' })).statusCode, 404)
  t.equal((await prod.inject({ url: '/openapi.yaml' })).statusCode, 404)
  t.same((await prod.inject(gql('{ task(id: "1") { id __typename } }'))).json(), { data: { task: { id: '1', __typename: 'Task' } } }, '__typename is not introspection')

  const { app: opted } = await setup(t, { production: true, graphql: { introspection: true }, security: { graphiql: true, docs: true } })
  t.equal((await opted.inject(introspect)).json().data.__schema.queryType.name, 'Query')
  t.equal((await opted.inject({ url: '/graphiql' })).statusCode, 200)
  t.equal((await opted.inject({ url: '/docs' })).statusCode, 200)

  const { app: devOff } = await setup(t, { graphql: { introspection: false }, security: { graphiql: false, docs: false } })
  t.ok((await devOff.inject(introspect)).json().errors, 'switches work outside production too')
  t.equal((await devOff.inject({ url: '/graphiql' })).statusCode, 404)
})

t.test('errors never carry stack traces or internal messages', async (t) => {
  for (const production of [false, true]) {
    const { app } = await setup(t, { production })
    // A bug, not a client error: its message names internals.
    app.gateway.loader.loadMany = async () => { throw new TypeError('Cannot read properties of undefined (reading \'x\') at /work/main/src/secret.ts:1:1') }
    app.gateway.loader.load = async () => { throw new TypeError('Cannot read properties of undefined (reading \'x\') at /work/main/src/secret.ts:1:1') }

    const responses = [
      await app.inject(gql('{ tasks(ids: ["1"]) { id } }')),
      await app.inject(gql('{ task(id: "1") { id } }')),
      await app.inject({ url: '/v1/tasks?ids=1' }),
      await app.inject({ url: '/v1/tasks/1' }),
      await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: ['1'] } }),
      await app.inject(gql('{ nope }')),
      await app.inject(gql('{ tasks(ids: ["1"]) { id ')),
      await app.inject(gql('query ($ids: [ID!]!) { tasks(ids: $ids) { id } }', { ids: 'x'.repeat(10) as unknown as Record<string, unknown> })),
      await app.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' }, payload: '{"query": ' })
    ]
    for (const res of responses) {
      t.notMatch(res.body, /"stack"|at \/|secret\.ts|TypeError|node_modules|Cannot read/, `${production ? 'production' : 'development'}: ${res.body.slice(0, 120)}`)
      t.ok(messageOf(res.json())?.length > 0, 'still a message')
    }
    t.match(responses[0]!.json(), { errors: [{ message: 'Internal Server Error', extensions: { code: 'GW_ERR_INTERNAL' } }] })
    t.equal(responses[2]!.statusCode, 500)
    t.match(responses[2]!.json(), { code: 'GW_ERR_INTERNAL', message: 'Internal Server Error' })
  }
})
