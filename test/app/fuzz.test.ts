import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { setup } from '../helpers/gateway.js'

/**
 * Property-based: generated ids, query strings, bodies, content types and
 * GraphQL documents against a gateway in front of a healthy fake upstream.
 * Whatever comes in: never a 5xx, never a crash, every 4xx is JSON with a
 * message, and no GraphQL answer hides an internal error.
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 300)
const KEY = 'gw-client-key-fuzz-0123456789'
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)

/** encodeURIComponent, except that a lone surrogate (which it refuses) goes as its UTF-8 replacement bytes. */
function enc (value: string): string {
  try {
    return encodeURIComponent(value)
  } catch {
    return [...Buffer.from(value, 'utf8')].map((byte) => '%' + byte.toString(16).padStart(2, '0')).join('')
  }
}

// --- arbitraries ---

const tricky = fc.constantFrom('', ' ', ',', ',,', '/', '..', '../..', '%', '%2F', '%00', '%E0%A4%A', '\u0000', '\uFFFF', '\uD800', '💥', 'a'.repeat(64), 'a'.repeat(65), '1'.repeat(2000), '__proto__', 'constructor', '{}', '[]', 'null', '-1', '1e309', 'NaN', '"', '\\', '<script>', '?', '#', '&', '=')
const idArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[0-9]{1,20}$/) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 60, maxLength: 3000 }) },
  { weight: 2, arbitrary: tricky },
  { weight: 1, arbitrary: fc.array(tricky, { maxLength: 5 }).map((parts) => parts.join('')) }
)
const idsArb = fc.array(idArb, { maxLength: 30 })
/** Any JSON value, including the wrong types where ids belong. */
const jsonValueArb = fc.jsonValue({ maxDepth: 4 })

/** A query-string component, percent-encoded or raw printable ASCII (never a URL inject would refuse). */
const queryPartArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }).map(enc),
  fc.stringMatching(/^[!-"$-~]{0,40}$/)
)
const queryStringArb = fc.array(fc.tuple(fc.oneof(fc.constant('ids'), fc.constant('query'), fc.constant('variables'), queryPartArb), queryPartArb), { maxLength: 5 })
  .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'))

const contentTypeArb = fc.oneof(
  fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/graphql', 'text/plain', 'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x', 'application/octet-stream', 'application/json; charset=utf-16', 'APPLICATION/JSON', 'application/jsonx', ''),
  fc.stringMatching(/^[a-z]{1,10}\/[a-z+.-]{1,15}$/)
)
const bodyArb: fc.Arbitrary<string | Buffer> = fc.oneof(
  jsonValueArb.map((v) => JSON.stringify(v)),
  idsArb.map((ids) => JSON.stringify({ ids })),
  fc.record({ ids: jsonValueArb }).map((v) => JSON.stringify(v)),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.constantFrom('', '{', '[', 'null', '{"ids":', '{"ids":null}', '{"__proto__":{"ids":["1"]}}', '{"ids":["1"],"ids":[2]}', '\uFEFF{"ids":["1"]}')
)

const FIELDS = ['tasks', 'task', 'id', 'status', 'progress', 'progressPercent', 'final', 'buttons', 'label', 'customId', 'properties', 'submitTime', '__typename', '__schema', '__type', 'types', 'name', 'fields', 'type', 'ofType', 'nope']
const argValueArb: fc.Arbitrary<string> = fc.oneof(
  idArb.map((id) => JSON.stringify(id)),
  idsArb.map((ids) => JSON.stringify(ids)),
  fc.constantFrom('$ids', '$id', '$nope', 'null', '1', 'true', 'ENUM', '{ a: 1 }', '[1, [2]]', '""""block""""')
)
const fieldArb: fc.Arbitrary<string> = fc.letrec<{ field: string, set: string }>((tie) => ({
  field: fc.tuple(
    fc.option(fc.stringMatching(/^[a-z][a-z0-9_]{0,5}$/), { nil: undefined }),
    fc.constantFrom(...FIELDS),
    fc.option(fc.tuple(fc.constantFrom('ids', 'id', 'name', 'x'), argValueArb), { nil: undefined }),
    fc.option(tie('set'), { nil: undefined, freq: 2 })
  ).map(([alias, name, arg, set]) => `${alias === undefined ? '' : alias + ': '}${name}${arg === undefined ? '' : `(${arg[0]}: ${arg[1]})`}${set ?? ''}`),
  set: fc.array(fc.oneof({ depthSize: 'small' }, tie('field'), tie('field'), fc.constant('...F'), tie('set').map((s) => `... on Task ${s}`)), { minLength: 1, maxLength: 6 })
    .map((items) => `{ ${items.join(' ')} }`)
})).field
const documentArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(fc.constantFrom('', 'query ', 'query Q ', 'query ($ids: [ID!]!, $id: ID!) ', 'mutation ', 'subscription ', 'query ($ids: ID) '), fc.array(fieldArb, { minLength: 1, maxLength: 8 }), fc.option(fc.array(fieldArb, { minLength: 1, maxLength: 4 }), { nil: undefined }))
      .map(([head, fields, fragment]) => `${head}{ ${fields.join(' ')} }${fragment === undefined ? '' : ` fragment F on Task { ${fragment.join(' ')} }`}`)
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  // Text that is not GraphQL but is JSON: mercurius would read it as an AST.
  { weight: 1, arbitrary: fc.oneof(jsonValueArb.map((v) => JSON.stringify(v)), fc.constantFrom('null', '1', '[]', '{}', '"x"', '{"kind":"Document","definitions":[{}]}')) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom('{', '}', '(', ')', 'tasks', 'ids:', '"1"', '[', ']', '...', 'fragment', 'on', '$ids', '@skip(if: true)', '#', '\n', 'query'), { maxLength: 60 }).map((tokens) => tokens.join(' ')) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }).map((n) => '{ tasks(ids: ["1"]) '.repeat(n) + '{ id }' + ' }'.repeat(n)) }
)
const variablesArb = fc.oneof(
  fc.constant(undefined),
  fc.record({ ids: fc.oneof(idsArb, jsonValueArb), id: fc.oneof(idArb, jsonValueArb) }, { requiredKeys: [] }),
  jsonValueArb
)
const headerValueArb = fc.stringMatching(/^[ -~]{0,60}$/)

// --- the checks ---

async function check (app: FastifyInstance, request: InjectOptions): Promise<void> {
  const res = await app.inject(request)
  const where = `${request.method ?? 'GET'} ${String(request.url).slice(0, 200)}`
  if (res.statusCode >= 500) throw new Error(`${where} answered ${res.statusCode}: ${res.body.slice(0, 500)}`)
  const type = String(res.headers['content-type'] ?? '')
  if (res.statusCode >= 400) {
    if (!/json/.test(type)) throw new Error(`${where} answered ${res.statusCode} as ${type}: ${res.body.slice(0, 200)}`)
    const body = JSON.parse(res.body)
    // Gateway errors carry `message`, GraphQL `errors[].message`, the drop-in routes upstream's own `description`.
    const message = body?.message ?? body?.errors?.[0]?.message ?? body?.description
    if (typeof message !== 'string' || message.trim() === '') throw new Error(`${where} answered ${res.statusCode} without a message: ${res.body.slice(0, 200)}`)
  }
  if (/json/.test(type) && res.body !== '') {
    const body = JSON.parse(res.body)
    for (const err of body?.errors ?? []) {
      if (err?.message === 'Internal Server Error') throw new Error(`${where}: an internal error behind a ${res.statusCode}: ${JSON.stringify(request.payload)?.slice(0, 300)}`)
    }
    if (/"stack"/.test(res.body)) throw new Error(`${where}: a stack trace in the body`)
  }
}

async function property<T> (t: Test, app: FastifyInstance, name: string, arb: fc.Arbitrary<T>, toRequests: (value: T) => InjectOptions[]): Promise<void> {
  await t.resolves(fc.assert(fc.asyncProperty(arb, async (value) => {
    for (const request of toRequests(value)) await check(app, request)
  }), { numRuns: RUNS, seed: SEED, endOnFailure: true }), name)
}

t.test(`the gateway never fails on generated input (seed ${SEED})`, async (t) => {
  t.setTimeout(300_000)
  const { app, upstream } = await setup(t, { security: { apiKeys: KEY }, limits: { bodyLimitBytes: 64 * 1024 } })
  upstream.add({ id: '1', status: 'SUCCESS', progress: '100%', buttons: [{ label: 'U1', customId: 'MJ::1' }] }, { id: '2' }, { id: '12345678901234567890' })
  const auth = { 'x-api-key': KEY }

  await property(t, app, 'ids on every surface', idsArb, (ids) => [
    { url: '/v1/tasks?ids=' + ids.map(enc).join(','), headers: auth },
    { method: 'POST', url: '/v1/tasks', headers: auth, payload: { ids } },
    { method: 'POST', url: '/mj/task/list-by-condition', headers: auth, payload: { ids } },
    { method: 'POST', url: '/graphql', headers: auth, payload: { query: 'query ($ids: [ID!]!) { tasks(ids: $ids) { id status } }', variables: { ids } } },
    ...ids.slice(0, 3).flatMap((id): InjectOptions[] => [
      { url: '/v1/tasks/' + enc(id), headers: auth },
      { url: '/mj/task/' + enc(id) + '/fetch', headers: auth },
      { method: 'POST', url: '/graphql', headers: auth, payload: { query: 'query ($id: ID!) { task(id: $id) { id } }', variables: { id } } }
    ])
  ])

  await property(t, app, 'query strings', queryStringArb, (qs) => [
    { url: '/v1/tasks?' + qs, headers: auth },
    { url: '/graphql?' + qs, headers: auth },
    { url: '/healthz?' + qs },
    { url: '/v1/tasks/1?' + qs, headers: auth },
    { url: '/nowhere?' + qs, headers: auth }
  ])

  await property(t, app, 'bodies and content types', fc.tuple(bodyArb, contentTypeArb), ([body, type]) => ['/v1/tasks', '/mj/task/list-by-condition', '/graphql'].map((url) => ({
    method: 'POST' as const,
    url,
    headers: type === '' ? auth : { ...auth, 'content-type': type },
    payload: body
  })))

  await property(t, app, 'GraphQL documents', fc.tuple(documentArb, variablesArb, fc.option(fc.string({ maxLength: 10 }), { nil: undefined })), ([query, variables, operationName]) => [
    { method: 'POST', url: '/graphql', headers: auth, payload: { query, variables, operationName } as Record<string, unknown> },
    { method: 'POST', url: '/graphql', headers: { ...auth, 'content-type': 'application/graphql' }, payload: query },
    { url: '/graphql?query=' + enc(query) + (variables === undefined ? '' : '&variables=' + enc(JSON.stringify(variables))), headers: auth }
  ])

  await property(t, app, 'credentials headers', fc.tuple(headerValueArb, headerValueArb), ([authorization, apiKey]) => [
    { url: '/v1/tasks/1', headers: { authorization } },
    { url: '/v1/tasks/1', headers: { 'x-api-key': apiKey } },
    { method: 'POST', url: '/graphql', headers: { authorization, 'x-api-key': apiKey }, payload: { query: '{ task(id: "1") { id } }' } }
  ])

  // Still up, and still answering.
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200)
  const after = await app.inject({ url: '/v1/tasks/1', headers: auth })
  t.equal(after.statusCode, 200)
  t.equal(after.json().id, '1')
})

t.test('pass-through mode under generated credentials and ids', async (t) => {
  t.setTimeout(120_000)
  const { app } = await setup(t, { upstream: { auth: 'passthrough', key: undefined } })
  await property(t, app, 'pass-through', fc.tuple(headerValueArb, idsArb), ([authorization, ids]) => [
    { url: '/v1/tasks?ids=' + ids.map(enc).join(','), headers: { authorization } },
    { url: '/v1/tasks?ids=1', headers: { authorization: `Bearer ${authorization.replace(/\s/g, '') || 'x'}` } },
    { method: 'POST', url: '/graphql', headers: { authorization }, payload: { query: '{ tasks(ids: ["1"]) { id } }' } }
  ])
})
