import t from 'tap'
import { Client, CombinedError, fetchExchange, gql } from '@urql/core'
import type { GatewayOptions } from '../../src/config.js'
import { graphqlOnPort, setup } from '../helpers/gateway.js'

/**
 * urql (`@urql/core`, fetch exchange only) against the gateway on a real
 * port in front of the fake upstream: the answers and the errors as a real
 * GraphQL client sees them, over POST and over GET (`preferGetMethod: 'force'`).
 */

const CLIENT_KEY = 'gw-client-key-urql-0123456789'

const TASKS = gql`
  query Tasks ($ids: [ID!]!) {
    tasks(ids: $ids) { id status progress final }
  }
`

interface TasksData {
  tasks: Array<{ id: string, status: string, progress: string, final: boolean } | null>
}

/** What the gateway received on /graphql: the method and the status it answered. */
interface Seen { method: string, status: number }

type Teardown = Parameters<typeof setup>[0]

function gateway (t: Teardown, options: Parameters<typeof setup>[1] = {}): ReturnType<typeof graphqlOnPort<Seen>> {
  return graphqlOnPort<Seen>(t, options, (request, reply) =>
    request.url.split('?')[0] === '/graphql' ? { method: request.method, status: reply.statusCode } : undefined)
}

function urql (url: string, preferGetMethod: false | 'force', headers: Record<string, string> = {}): Client {
  // network-only: every query reaches the gateway, so each assertion is about a real exchange.
  return new Client({ url, exchanges: [fetchExchange], preferGetMethod, requestPolicy: 'network-only', fetchOptions: { headers } })
}

/** The HTTP status urql saw, from the Response it keeps on an error. */
function httpStatus (error: CombinedError | undefined): number | undefined {
  return (error?.response as Response | undefined)?.status
}

const MODES = [
  { method: 'POST', preferGetMethod: false },
  { method: 'GET', preferGetMethod: 'force' }
] as const

for (const { method, preferGetMethod } of MODES) {
  t.test(`urql reads tasks(ids) by ${method} in request order with null for unknown ids`, async (t) => {
    const { upstream, url, seen } = await gateway(t)
    upstream.add(
      { id: '1700000000000101', status: 'SUCCESS', progress: '100%' },
      { id: '1700000000000202', status: 'IN_PROGRESS', progress: '31%' }
    )
    const client = urql(url, preferGetMethod)
    const result = await client.query<TasksData>(TASKS, { ids: ['1700000000000202', '1700000000000999', '1700000000000101', '1700000000000202'] }).toPromise()
    t.equal(result.error, undefined, 'no error')
    t.same(result.data, {
      tasks: [
        { id: '1700000000000202', status: 'IN_PROGRESS', progress: '31%', final: false },
        null,
        { id: '1700000000000101', status: 'SUCCESS', progress: '100%', final: true },
        { id: '1700000000000202', status: 'IN_PROGRESS', progress: '31%', final: false }
      ]
    }, 'request order, null for the unknown id, a repeated id answered twice')
    t.same(seen, [{ method, status: 200 }], `the client really sent ${method}`)
    t.equal(upstream.calls.length, 1, 'one upstream call for the whole list')
  })

  t.test(`urql by ${method} sees an upstream failure as a CombinedError with UPSTREAM_ERROR beside partial data`, async (t) => {
    const { upstream, url, seen } = await gateway(t, { upstream: { retries: 0 } })
    upstream.add({ id: '1700000000000101', status: 'SUCCESS', progress: '100%' })
    const client = urql(url, preferGetMethod)
    // The finished task is cached by a first read; the second read needs upstream for the other id.
    const warm = await client.query<TasksData>(TASKS, { ids: ['1700000000000101'] }).toPromise()
    t.equal(warm.error, undefined)
    upstream.script({ kind: 'status', status: 500 })
    const result = await client.query<TasksData>(TASKS, { ids: ['1700000000000101', '1700000000000202'] }).toPromise()

    t.ok(result.error instanceof CombinedError, 'result.error is a CombinedError')
    t.equal(result.error?.networkError, undefined, 'not a network error: the HTTP exchange succeeded')
    t.equal(httpStatus(result.error), 200)
    t.equal(result.error?.graphQLErrors.length, 1, 'one error, for the one failed id')
    const [error] = result.error?.graphQLErrors ?? []
    t.equal(error?.extensions.code, 'UPSTREAM_ERROR')
    t.same(error?.path, ['tasks', 1], 'the error points at the failed item')
    t.match(result.error?.message, /^\[GraphQL\] Upstream call failed/, "urql's combined message")
    t.same(result.data?.tasks.map((task) => task?.id ?? null), ['1700000000000101', null], 'partial data: the cached task, null for the failed one')
    t.same(seen.map((s) => s.method), [method, method])
  })

  t.test(`urql by ${method} sees a validation error as graphQLErrors with no data`, async (t) => {
    const { upstream, url, seen } = await gateway(t)
    const client = urql(url, preferGetMethod)
    const result = await client.query(gql`query { tasks(ids: ["1"]) { id nope } }`, {}).toPromise()
    t.ok(result.error instanceof CombinedError)
    t.equal(result.error?.networkError, undefined, 'not a network error')
    t.equal(result.data, undefined, 'no data')
    t.match(result.error?.graphQLErrors.map((e) => e.message), ['Cannot query field "nope" on type "Task".'])
    // urql asks for application/graphql-response+json first, so a request error is a 400 (GraphQL over HTTP).
    t.equal(httpStatus(result.error), 400)
    t.same(seen, [{ method, status: 400 }])
    t.equal(upstream.calls.length, 0, 'nothing reached upstream')
  })

  t.test(`urql by ${method} sees a refused client key as a 401 carrying an UNAUTHENTICATED GraphQL error`, async (t) => {
    const options: GatewayOptions = { security: { apiKeys: CLIENT_KEY } }
    const { upstream, url, seen } = await gateway(t, options)
    upstream.add({ id: '1700000000000101', status: 'SUCCESS', progress: '100%' })
    const ids = ['1700000000000101']

    for (const [label, headers, message] of [
      ['no key', {}, /^Missing client key/],
      ['a wrong key', { authorization: 'Bearer gw-client-key-wrong-0123456789' }, /^Invalid client key$/]
    ] as const) {
      const result = await urql(url, preferGetMethod, headers).query<TasksData>(TASKS, { ids }).toPromise()
      t.ok(result.error instanceof CombinedError, `${label}: a CombinedError`)
      t.equal(result.error?.networkError, undefined, `${label}: urql reads the 401 body, so not a network error`)
      t.equal(httpStatus(result.error), 401, `${label}: HTTP 401`)
      t.equal(result.error?.graphQLErrors[0]?.extensions.code, 'UNAUTHENTICATED', `${label}: extensions.code`)
      t.match(result.error?.graphQLErrors[0]?.message, message, `${label}: message`)
      t.equal(result.data, undefined, `${label}: no data`)
    }

    for (const headers of [{ authorization: `Bearer ${CLIENT_KEY}` }, { 'x-api-key': CLIENT_KEY }] as Array<Record<string, string>>) {
      const result = await urql(url, preferGetMethod, headers).query<TasksData>(TASKS, { ids }).toPromise()
      t.equal(result.error, undefined, `${Object.keys(headers)[0]}: accepted`)
      t.equal(result.data?.tasks[0]?.id, '1700000000000101')
    }
    t.same(seen, [401, 401, 200, 200].map((status) => ({ method, status })), `every request went by ${method}`)
    t.equal(upstream.calls.length, 1, 'only the accepted requests reached upstream (then the cache answered)')
  })
}
