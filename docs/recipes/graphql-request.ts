import { GraphQLClient, gql } from 'graphql-request'

export interface Task { id: string, status: string | null, progress: string | null, final: boolean }
export interface TaskError { message: string, path?: Array<string | number>, extensions?: { code?: string } }

export const TASKS = gql`
  query Tasks($ids: [ID!]!) { tasks(ids: $ids) { id status progress final } }
`

export const TASK = gql`
  query Task($id: ID!) { task(id: $id) { id status progress final } }
`

/** A graphql-request client for the gateway at `url` (e.g. http://127.0.0.1:3000/graphql). */
export function createGraphQLClient (url: string, clientKey?: string): GraphQLClient {
  return new GraphQLClient(url, {
    headers: clientKey === undefined ? {} : { 'x-api-key': clientKey },
    // Partial results: an unknown id is null, a failed or malformed one is null with an error.
    errorPolicy: 'all'
  })
}

/** Tasks in request order, with the errors of the ids that have one. */
export async function fetchTasks (client: GraphQLClient, ids: string[]) {
  return client.rawRequest<{ tasks: Array<Task | null> }>(TASKS, { ids })
}

/** Several lookups in one POST (at most GRAPHQL_MAX_BATCH, 10), answered in order. */
export async function fetchBatch (client: GraphQLClient, ids: string[], id: string) {
  const [list, one] = await client.batchRequests<[
    { data: { tasks: Array<Task | null> }, errors?: TaskError[] },
    { data: { task: Task | null }, errors?: TaskError[] }
  ]>([
    { document: TASKS, variables: { ids } },
    { document: TASK, variables: { id } }
  ])
  return { tasks: list.data.tasks, task: one.data.task, errors: [list, one].flatMap((r) => r.errors ?? []) }
}
