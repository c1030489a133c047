import { HIT_ID } from '../fixtures.js'
import type { Surface } from './cache-hit.js'

/** A cached task over REST, against bare Fastify 5 returning the same JSON from a Map. */
export const restHit: Surface = {
  id: 'cache-hit-rest',
  title: 'Cache hit, REST: CPU per request',
  anchor: (s) => s.rest,
  request: { method: 'GET', path: `/v1/tasks/${HIT_ID}` }
}
