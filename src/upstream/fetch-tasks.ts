import { errors } from '../errors.js'
import type { FetchAnswer, FetchChunk } from '../core/batcher.js'
import type { CircuitBreaker } from './breaker.js'
import type { UpstreamClient } from './client.js'
import type { ParsedList } from './validate.js'

/** One answer per requested id: a malformed entry fails that id alone, an id upstream left out is unknown. */
export function answersOf (ids: readonly string[], list: ParsedList): FetchAnswer[] {
  return ids.map((id) => {
    const bad = list.invalid.get(id)
    if (bad !== undefined) return new errors.UpstreamBadResponse(bad)
    return list.tasks.get(id) ?? null
  })
}

/** The batcher's fetch: one list-by-condition call through the circuit breaker. */
export function taskFetcher (upstream: Pick<UpstreamClient, 'listByCondition'>, breaker: Pick<CircuitBreaker, 'run'>): FetchChunk {
  return async (ids, scope) => answersOf(ids, await breaker.run(() => upstream.listByCondition(ids, scope.credential)))
}
