import { ApolloClient, InMemoryCache, gql, type TypedDocumentNode } from '@apollo/client'
import { BatchHttpLink } from '@apollo/client/link/batch-http'

export interface Button { customId: string | null, label: string | null }
export interface Task {
  id: string
  status: string | null
  progress: string | null
  final: boolean
  imageUrl: string | null
  buttons: Button[] | null
}

const TASK_FIELDS = gql`
  fragment TaskFields on Task {
    id status progress final imageUrl
    buttons { customId label }
  }
`

export const TASKS: TypedDocumentNode<{ tasks: Array<Task | null> }, { ids: string[] }> = gql`
  query Tasks($ids: [ID!]!) { tasks(ids: $ids) { ...TaskFields } }
  ${TASK_FIELDS}
`

export const TASK: TypedDocumentNode<{ task: Task | null }, { id: string }> = gql`
  query Task($id: ID!) { task(id: $id) { ...TaskFields } }
  ${TASK_FIELDS}
`

/** An Apollo Client for the gateway at `url` (e.g. http://127.0.0.1:3000/graphql). */
export function createApolloClient (url: string, clientKey?: string): ApolloClient {
  return new ApolloClient({
    // Queries started within 10 ms go out as one POST. Keep batchMax <= GRAPHQL_MAX_BATCH (10).
    link: new BatchHttpLink({
      uri: url,
      batchMax: 10,
      batchInterval: 10,
      headers: clientKey === undefined ? {} : { 'x-api-key': clientKey }
    }),
    cache: new InMemoryCache({
      typePolicies: {
        // Task is keyed by its id already. A button's customId names the task and the action.
        Button: { keyFields: (button) => typeof button.customId === 'string' ? ['customId'] : false },
        Query: {
          fields: {
            // task(id) reads Task:<id> when tasks(ids) has loaded it: no second request.
            task: {
              read: (existing, { args, toReference }) =>
                existing ?? toReference({ __typename: 'Task', id: args?.id as string })
            }
          }
        }
      }
    })
  })
}

// errorPolicy 'all' keeps partial results: an unknown id is null, a failed or malformed one
// is null with an error (extensions.code) beside the other tasks.

/** tasks(ids) in request order. */
export async function loadTasks (client: ApolloClient, ids: string[]) {
  const { data, error } = await client.query({ query: TASKS, variables: { ids }, errorPolicy: 'all' })
  return { tasks: data?.tasks ?? [], error }
}

/** task(id), from the cache when tasks(ids) has it. */
export async function loadTask (client: ApolloClient, id: string) {
  const { data, error } = await client.query({ query: TASK, variables: { id }, errorPolicy: 'all' })
  return { task: data?.task ?? null, error }
}
