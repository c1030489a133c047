import type { UpstreamTask } from './types.js'

/**
 * The upstream body guard: every list-by-condition answer is untrusted.
 * A body that is not a JSON array of objects with string ids is unusable as a
 * whole (we cannot tell which id an entry belongs to). An entry with a
 * usable id but a field of the wrong type, or nested past MAX_TASK_DEPTH,
 * fails only that id. `""`, `null` and `0` are legitimate upstream values
 * everywhere (docs/upstream.md).
 */

const STRING_FIELDS = ['action', 'status', 'progress', 'prompt', 'promptEn', 'description', 'failReason', 'imageUrl', 'state'] as const
const TIME_FIELDS = ['submitTime', 'startTime', 'finishTime'] as const
const BUTTON_STRING_FIELDS = ['customId', 'emoji', 'label'] as const
const BUTTON_INT_FIELDS = ['style', 'type'] as const

export interface ParsedList {
  /** Requested ids that came back with a well-formed entry (first entry wins on duplicates). */
  readonly tasks: Map<string, UpstreamTask>
  /** Requested ids whose entry was malformed, with the reason. */
  readonly invalid: Map<string, string>
  /** Ids upstream sent that were not asked for: ignored, never cached. */
  readonly unrequested: number
  readonly duplicates: number
}

export class BadBodyError extends Error {}

/**
 * Deepest nesting a task may have, the task itself counting as level 1. Real
 * tasks are 3 levels deep (a button's fields); a deeper one is hostile or
 * broken, and would overflow the recursive code downstream (the version hash,
 * JSON serializers) instead of failing as a bad answer for its id.
 */
export const MAX_TASK_DEPTH = 32

/** True when objects and arrays nest more than `max` levels; iterative, so no depth can overflow the stack here. */
function deeperThan (value: object, max: number): boolean {
  const stack: Array<[object, number]> = [[value, 1]]
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [node, depth] = next
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child === null || typeof child !== 'object') continue
      if (depth + 1 > max) return true
      stack.push([child, depth + 1])
    }
  }
  return false
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const nullish = (v: unknown): boolean => v === null || v === undefined

function fieldProblem (entry: Record<string, unknown>): string | undefined {
  for (const f of STRING_FIELDS) {
    if (!nullish(entry[f]) && typeof entry[f] !== 'string') return `field ${f} is ${typeof entry[f]}, expected string`
  }
  for (const f of TIME_FIELDS) {
    const v = entry[f]
    // Some proxies leave unset times as "" rather than 0.
    if (!nullish(v) && v !== '' && !Number.isSafeInteger(v)) return `field ${f} is not an integer timestamp`
  }
  if (!nullish(entry.properties) && !isObject(entry.properties)) return 'field properties is not an object'
  const buttons = entry.buttons
  if (!nullish(buttons)) {
    if (!Array.isArray(buttons)) return 'field buttons is not an array'
    for (const b of buttons) {
      if (!isObject(b)) return 'a button is not an object'
      for (const f of BUTTON_STRING_FIELDS) if (!nullish(b[f]) && typeof b[f] !== 'string') return `button field ${f} is not a string`
      for (const f of BUTTON_INT_FIELDS) if (!nullish(b[f]) && !Number.isSafeInteger(b[f])) return `button field ${f} is not an integer`
    }
  }
  if (deeperThan(entry, MAX_TASK_DEPTH)) return `nested deeper than ${MAX_TASK_DEPTH} levels`
  return undefined
}

/** Checks a parsed list-by-condition body against the ids that were asked for. */
export function parseTaskList (body: unknown, requested: ReadonlySet<string>): ParsedList {
  if (!Array.isArray(body)) {
    throw new BadBodyError(`expected a JSON array, got ${body === null ? 'null' : typeof body}`)
  }
  const tasks = new Map<string, UpstreamTask>()
  const invalid = new Map<string, string>()
  let unrequested = 0
  let duplicates = 0
  for (let i = 0; i < body.length; i++) {
    const entry: unknown = body[i]
    if (!isObject(entry)) throw new BadBodyError(`entry ${i} is not an object`)
    const id = entry.id
    if (typeof id !== 'string' || id === '') throw new BadBodyError(`entry ${i} has no string id`)
    if (!requested.has(id)) { unrequested++; continue }
    if (tasks.has(id) || invalid.has(id)) { duplicates++; continue }
    const problem = fieldProblem(entry)
    if (problem === undefined) tasks.set(id, entry as UpstreamTask)
    else invalid.set(id, `task ${id}: ${problem}`)
  }
  return { tasks, invalid, unrequested, duplicates }
}
