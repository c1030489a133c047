import t from 'tap'
import { readFileSync } from 'node:fs'
import { CombinedGraphQLErrors } from '@apollo/client'
import { ClientError } from 'graphql-request'
import { createApolloClient, loadTask, loadTasks } from '../../docs/recipes/apollo-client.js'
import { createGraphQLClient, fetchBatch, fetchTasks } from '../../docs/recipes/graphql-request.js'
import { graphqlOnPort, setup } from '../helpers/gateway.js'

/**
 * The README's client recipes (docs/recipes/*.ts, shown verbatim in the
 * README's "Clients" section) run as written against the gateway on a real
 * port in front of the fake upstream, with the real client libraries.
 */

const README = new URL('../../README.md', import.meta.url)

/** One POST /graphql as the gateway saw it: how many operations it carried and its status. */
interface Seen { operations: number, status: number }

type Teardown = Parameters<typeof setup>[0]

function gateway (t: Teardown, options: Parameters<typeof setup>[1] = {}): ReturnType<typeof graphqlOnPort<Seen>> {
  return graphqlOnPort<Seen>(t, options, (request, reply) => request.method === 'POST' && request.url === '/graphql'
    ? { operations: Array.isArray(request.body) ? request.body.length : 1, status: reply.statusCode }
    : undefined)
}

function button (id: string, n: number): { customId: string, label: string } {
  return { customId: `MJ::JOB::upsample::${n}::${id}`, label: `U${n}` }
}

/** The ids of the first upstream call, sorted: the batcher's order is its own. */
function firstCallIds (upstream: { calls: Array<{ ids: string[] }> }): string[] {
  return [...(upstream.calls[0]?.ids ?? [])].sort()
}

t.test('Apollo Client recipe: BatchHttpLink sends concurrent queries as one POST, and their ids merge into one upstream call', async (t) => {
  const { upstream, url, seen } = await gateway(t)
  upstream.add(
    { id: '101', status: 'SUCCESS', progress: '100%', imageUrl: 'https://cdn.example/101.png', buttons: [button('101', 1), button('101', 2)] },
    { id: '102', status: 'IN_PROGRESS', progress: '31%', buttons: [] },
    { id: '103', status: 'FAILURE', progress: '0%', buttons: null }
  )
  const client = createApolloClient(url)
  t.teardown(() => client.stop())

  const [list, one, other] = await Promise.all([
    loadTasks(client, ['101', 'nope']),
    loadTask(client, '102'),
    loadTasks(client, ['103'])
  ])
  t.strictSame(seen, [{ operations: 3, status: 200 }], 'one POST carrying the three operations')
  t.strictSame(firstCallIds(upstream), ['101', '102', '103', 'nope'], 'one upstream call for all of them')
  t.equal(upstream.calls.length, 1)

  t.equal(list.error, undefined)
  t.strictSame(list.tasks, [{
    __typename: 'Task',
    id: '101',
    status: 'SUCCESS',
    progress: '100%',
    final: true,
    imageUrl: 'https://cdn.example/101.png',
    buttons: [{ __typename: 'Button', ...button('101', 1) }, { __typename: 'Button', ...button('101', 2) }]
  }, null], 'request order, null for the unknown id')
  t.strictSame(one.task, { __typename: 'Task', id: '102', status: 'IN_PROGRESS', progress: '31%', final: false, imageUrl: null, buttons: [] })
  t.strictSame(other.tasks.map((task) => task?.buttons), [null])
})

t.test('Apollo Client recipe: task(id) reads Task:<id> after tasks(ids) loaded it, with no second request; buttons are keyed by customId', async (t) => {
  const { upstream, url, seen } = await gateway(t)
  upstream.add(
    { id: '201', status: 'SUCCESS', progress: '100%', buttons: [button('201', 1), { customId: null as unknown as string, label: 'no id' }] },
    { id: '202', status: 'IN_PROGRESS', progress: '50%' }
  )
  const client = createApolloClient(url)
  t.teardown(() => client.stop())

  const { tasks } = await loadTasks(client, ['201', '202'])
  t.equal(seen.length, 1)
  const { task, error } = await loadTask(client, '201')
  t.equal(error, undefined)
  t.strictSame(task, tasks[0], 'the task tasks(ids) loaded')
  t.equal(seen.length, 1, 'no second network request')
  t.equal(upstream.calls.length, 1)

  const cache = client.cache.extract() as Record<string, Record<string, unknown>>
  const key = 'Button:{"customId":"MJ::JOB::upsample::1::201"}'
  t.strictSame(cache[key], { __typename: 'Button', customId: 'MJ::JOB::upsample::1::201', label: 'U1' }, 'a button is an entity keyed by customId')
  t.strictSame(cache['Task:201']?.buttons, [{ __ref: key }, { __typename: 'Button', customId: null, label: 'no id' }], 'one without a customId stays inside its task')

  // An id no query has loaded goes to the gateway.
  const unknown = await loadTask(client, '299')
  t.equal(unknown.task, null)
  t.equal(seen.length, 2, 'a task not in the cache is fetched')
})

t.test('Apollo Client recipe: errors reach each operation, a bad id beside partial data, a refused batch as each operation\'s error', async (t) => {
  const { upstream, url, seen } = await gateway(t, { limits: { maxIdsPerRequest: 3 } })
  upstream.add({ id: '301', status: 'SUCCESS', progress: '100%' })
  const client = createApolloClient(url)
  t.teardown(() => client.stop())

  const partial = await loadTasks(client, ['301', 'bad id!'])
  t.strictSame(partial.tasks.map((task) => task?.id ?? null), ['301', null], 'the good id is answered')
  t.ok(CombinedGraphQLErrors.is(partial.error), 'a GraphQL error, not a network error')
  const [invalid] = CombinedGraphQLErrors.is(partial.error) ? partial.error.errors : []
  t.equal(invalid?.extensions?.code, 'GW_ERR_INVALID_ID')
  t.strictSame(invalid?.path, ['tasks', 1])
  t.strictSame(seen, [{ operations: 1, status: 200 }])

  // Four ids across two operations of one batch: over MAX_IDS_PER_REQUEST (3) as a whole.
  const [a, b] = await Promise.all([loadTasks(client, ['302', '303']), loadTasks(client, ['304', '305'])])
  t.strictSame(seen.at(-1), { operations: 2, status: 400 })
  for (const result of [a, b]) {
    t.ok(CombinedGraphQLErrors.is(result.error), 'each operation gets the GraphQL error, not a result-count mismatch')
    t.equal(CombinedGraphQLErrors.is(result.error) ? result.error.errors[0]?.extensions?.code : undefined, 'GW_ERR_TOO_MANY_IDS')
    t.strictSame(result.tasks, [])
  }
  t.strictSame(upstream.calls.map((call) => call.ids), [['301']], 'the refused batch reached nothing')
})

t.test('graphql-request recipe: errorPolicy "all" returns a bad id\'s error beside the others\' data', async (t) => {
  const { upstream, url, seen } = await gateway(t)
  upstream.add({ id: '1700000000000101', status: 'SUCCESS', progress: '100%' })
  const client = createGraphQLClient(url)

  const { data, errors, status } = await fetchTasks(client, ['1700000000000101', 'bad id!'])
  t.equal(status, 200)
  t.strictSame(data.tasks, [{ id: '1700000000000101', status: 'SUCCESS', progress: '100%', final: true }, null])
  t.strictSame(errors?.map((e) => ({ message: e.message, path: e.path, code: e.extensions?.code })), [
    { message: 'ids[1] has characters outside A-Z a-z 0-9 _ . : -', path: ['tasks', 1], code: 'GW_ERR_INVALID_ID' }
  ])
  t.strictSame(seen, [{ operations: 1, status: 200 }])
})

t.test('graphql-request recipe: batchRequests is one POST, answered in order, its ids merged into one upstream call', async (t) => {
  const { upstream, url, seen } = await gateway(t)
  upstream.add({ id: '401', status: 'SUCCESS', progress: '100%' }, { id: '402', status: 'IN_PROGRESS', progress: '10%' }, { id: '403', status: 'NOT_START', progress: '0%' })
  const client = createGraphQLClient(url)

  const result = await fetchBatch(client, ['401', 'nope', '402'], '403')
  t.strictSame(result, {
    tasks: [{ id: '401', status: 'SUCCESS', progress: '100%', final: true }, null, { id: '402', status: 'IN_PROGRESS', progress: '10%', final: false }],
    task: { id: '403', status: 'NOT_START', progress: '0%', final: false },
    errors: []
  })
  t.strictSame(seen, [{ operations: 2, status: 200 }])
  t.strictSame(firstCallIds(upstream), ['401', '402', '403', 'nope'])
  t.equal(upstream.calls.length, 1)
})

t.test('graphql-request recipe: a batch over GRAPHQL_MAX_BATCH is a ClientError carrying GW_ERR_BATCH_TOO_LARGE', async (t) => {
  const { upstream, url } = await gateway(t, { graphql: { maxBatch: 1 } })
  const client = createGraphQLClient(url)
  const error = await fetchBatch(client, ['1'], '2').then(() => undefined, (err: unknown) => err)
  t.ok(error instanceof ClientError, 'a ClientError')
  const response = (error as ClientError).response
  t.equal(response.status, 413)
  t.equal(response.errors?.[0]?.extensions?.code, 'GW_ERR_BATCH_TOO_LARGE')
  t.match(response.errors?.[0]?.message, /at most 1 allowed per request \(GRAPHQL_MAX_BATCH\)/)
  t.equal(upstream.calls.length, 0)
})

t.test('the README shows each recipe exactly as the tests run it', async (t) => {
  const readme = readFileSync(README, 'utf8')
  const clients = readme.slice(readme.indexOf('\n## Clients\n'))
  t.ok(readme.includes('\n## Clients\n'), 'a Clients section')
  for (const [heading, file] of [
    ['### GraphQL: Apollo Client', 'docs/recipes/apollo-client.ts'],
    ['### GraphQL: graphql-request', 'docs/recipes/graphql-request.ts']
  ] as const) {
    const section = clients.slice(clients.indexOf(`\n${heading}\n`))
    t.ok(clients.includes(`\n${heading}\n`), `${heading} inside ## Clients`)
    // The block follows the recipe's path, as a link, before the next heading.
    const block = new RegExp(`\\[\`${file.replace(/[.]/g, '\\.')}\`\\]\\(${file.replace(/[.]/g, '\\.')}\\)[^#]*?\`\`\`ts\\n([\\s\\S]*?)\`\`\`\\n`).exec(section)
    t.ok(block, `${heading}: a ts block after the link to ${file}`)
    t.equal(block?.[1], readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'), `${heading}: the block is ${file}, verbatim`)
  }
})
