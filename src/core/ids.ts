import { errors } from '../errors.js'

export interface IdLimits {
  readonly maxIdsPerRequest: number
  readonly maxIdLength: number
}

// Upstream ids are digit strings; letters, `_`, `-`, `.` and `:` leave room for other proxies' ids.
const SAFE_ID = /^[A-Za-z0-9_.:-]+$/

/**
 * Checks a list of task ids from any surface. Errors name the position of
 * the first bad id, so a client can find it in a long list.
 */
export function checkIds (ids: readonly unknown[], limits: IdLimits, field = 'ids'): string[] {
  if (ids.length > limits.maxIdsPerRequest) throw new errors.TooManyIds(ids.length, limits.maxIdsPerRequest)
  for (let i = 0; i < ids.length; i++) checkId(ids[i], limits, `${field}[${i}]`)
  return ids as string[]
}

export function checkId (id: unknown, limits: IdLimits, where = 'id'): string {
  if (typeof id !== 'string') throw new errors.InvalidId(`${where} must be a string`)
  if (id === '') throw new errors.InvalidId(`${where} is empty`)
  if (id.length > limits.maxIdLength) throw new errors.InvalidId(`${where} is longer than ${limits.maxIdLength} characters`)
  if (!SAFE_ID.test(id)) throw new errors.InvalidId(`${where} has characters outside A-Z a-z 0-9 _ . : -`)
  return id
}

/** `"a,b,,c"` → `["a", "b", "", "c"]` so that an empty item is reported, not silently dropped. */
export function splitIds (raw: string): string[] {
  return raw === '' ? [] : raw.split(',').map((s) => s.trim())
}

/** What a query string parser makes of `ids`: a string, or an array when the key is repeated. */
export type IdsQuery = string | readonly string[] | undefined

/**
 * The ids of a query string, in order: `ids=a,b` (a comma-separated list),
 * `ids=a&ids=b` (the key repeated, as openapi-fetch and Swagger UI send an
 * array), or both mixed. A missing or empty `ids` is no ids; an empty item
 * of a longer list is kept, so checkIds reports it.
 */
export function queryIds (raw: IdsQuery): string[] {
  if (raw === undefined) return []
  if (typeof raw === 'string') return splitIds(raw)
  return raw.flatMap((item) => item.split(',').map((s) => s.trim()))
}

/** The query string of routes that take `?ids=`; the ids themselves are checked by checkIds. */
export const IDS_QUERYSTRING = Object.freeze({
  type: 'object',
  properties: {
    ids: {
      description: 'Task ids: `ids=a,b`, `ids=a&ids=b`, or both',
      anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }]
    }
  }
})
