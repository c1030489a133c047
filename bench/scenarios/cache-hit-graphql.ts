import { HIT_QUERY } from '../fixtures.js'
import type { Surface } from './cache-hit.js'

/** A cached task over GraphQL, against bare mercurius 16 with JIT on the same schema. */
export const graphqlHit: Surface = {
  id: 'cache-hit-graphql',
  title: 'Cache hit, GraphQL: CPU per request',
  anchor: (s) => s.graphql,
  request: { method: 'POST', path: '/graphql', body: HIT_QUERY, headers: { 'content-type': 'application/json' } }
}
