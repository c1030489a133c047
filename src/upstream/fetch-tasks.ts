import { errors } from '../errors.js'
import type { FetchAnswer, FetchChunk } from '../core/batcher.js'
import { StoredTask } from '../core/stored-task.js'
import type { CircuitBreaker } from './breaker.js'
import type { UpstreamClient } from './client.js'
import type { ParsedList } from './validate.js'

/**
 * One answer per requested id: a malformed entry fails that id alone, an id
 * upstream left out is unknown, and a task is serialized here, once, for
 * every reader after it.
 */
export function answersOf (ids: readonly string[], list: ParsedList): Array<FetchAnswer<StoredTask>> {
  return ids.map((id) => {
    const bad = list.invalid.get(id)
    if (bad !== undefined) return new errors.UpstreamBadResponse(bad)
    const task = list.tasks.get(id)
    return task === undefined ? null : StoredTask.from(task)
  })
}

/** The batcher's fetch: one list-by-condition call through the circuit breaker. */
export function taskFetcher (upstream: Pick<UpstreamClient, 'listByCondition'>, breaker: Pick<CircuitBreaker, 'run'>): FetchChunk<StoredTask> {
  return async (ids, scope) => answersOf(ids, await breaker.run(() => upstream.listByCondition(ids, scope.credential)))
}
