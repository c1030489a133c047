import type { FastifyReply } from 'fastify'
import type { Lookup } from '../core/task-loader.js'
import type { StoredTask } from '../core/stored-task.js'

/**
 * Sets `x-cache` from a request's lookups and returns their tasks, or throws
 * the first error. `stale` wins over `miss` over `hit`; a stale answer also
 * carries `Age` and a `Warning`, as HTTP caches mark stale-if-error responses.
 */
export function tasksOrThrow (reply: FastifyReply, lookups: readonly Lookup[]): Array<StoredTask | null> {
  let status: 'hit' | 'miss' | 'stale' = 'hit'
  let age = 0
  const tasks = new Array<StoredTask | null>(lookups.length)
  for (let i = 0; i < lookups.length; i++) {
    const lookup = lookups[i]!
    if (lookup.error !== undefined) throw lookup.error
    tasks[i] = lookup.stored
    if (lookup.cache === 'stale') {
      status = 'stale'
      age = Math.max(age, lookup.ageMs)
    } else if (lookup.cache === 'miss' && status === 'hit') {
      status = 'miss'
    }
  }
  reply.header('x-cache', status)
  if (status === 'stale') {
    reply.header('age', String(Math.floor(age / 1000)))
    reply.header('warning', '110 - "Response is Stale"')
  }
  return tasks
}

const JSON_TYPE = 'application/json; charset=utf-8'

/** Sends JSON text as it is: fastify does not serialize a string sent as JSON. */
export function sendJsonText (reply: FastifyReply, text: string): FastifyReply {
  return reply.type(JSON_TYPE).send(text)
}
