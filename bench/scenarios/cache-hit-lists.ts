import { LIST_IDS, LIST_QUERY, REPEATED_QUERY } from '../fixtures.js'
import type { Surface } from './cache-hit.js'

const JSON_POST = { 'content-type': 'application/json' }

/** Ten cached tasks over REST, against bare Fastify 5 mapping the ids over a Map. */
export const restList: Surface = {
  id: 'cache-hit-rest-list',
  title: 'Cache hit, REST list of 10: CPU per request',
  anchor: (s) => s.rest,
  request: { method: 'GET', path: `/v1/tasks?ids=${LIST_IDS.join(',')}` }
}

/** Ten cached tasks over GraphQL `tasks(ids)`, against bare mercurius 16 with JIT. */
export const graphqlList: Surface = {
  id: 'cache-hit-graphql-list',
  title: 'Cache hit, GraphQL tasks(ids) of 10: CPU per request',
  anchor: (s) => s.graphql,
  request: { method: 'POST', path: '/graphql', body: LIST_QUERY, headers: JSON_POST }
}

/**
 * A dashboard's poll as client libraries send it: the same named operation
 * with the same variables, again and again. The gateway may answer it from
 * its response cache; the bare server executes it every time.
 */
export const repeatedOperation: Surface = {
  id: 'repeated-operation',
  title: 'Repeated GraphQL operation with variables, 10 cached tasks: CPU per request',
  anchor: (s) => s.graphql,
  request: { method: 'POST', path: '/graphql', body: REPEATED_QUERY, headers: JSON_POST }
}
