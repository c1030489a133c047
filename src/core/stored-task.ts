import type { UpstreamTask } from '../upstream/types.js'
import { isFinalStatus, withNullTimes } from './task-rules.js'

/**
 * A task as the gateway keeps it: JSON text, serialized once when it arrives
 * from upstream, never per request. Text is far smaller and cheaper for the
 * garbage collector than a tree of small objects, and the hot paths (REST and
 * drop-in cache hits, SSE) write it as it is. Whoever needs the object (a
 * GraphQL execution, the watcher's change check) parses it: a fresh copy that
 * nobody else shares, so no caller can change what the cache holds.
 */
export class StoredTask {
  /** Upstream's row, as it came: what the drop-in routes serve. */
  readonly raw: string
  /** The REST shape: `""` times are `null` (openapi.yaml's `integer | null`); the same string when nothing differs. */
  readonly rest: string
  readonly final: boolean

  private constructor (raw: string, rest: string, final: boolean) {
    this.raw = raw
    this.rest = rest
    this.final = final
  }

  static from (task: UpstreamTask): StoredTask {
    const raw = JSON.stringify(task)
    const rest = withNullTimes(task)
    return new StoredTask(raw, rest === task ? raw : JSON.stringify(rest), isFinalStatus(task.status))
  }

  /**
   * A task from text another replica serialized (the shared tier), kept as
   * it came: parsed once, to check it is the task `id` and to derive the
   * REST shape. Undefined for anything else (another program's value, a bad write).
   */
  static fromRaw (raw: string, id: string): StoredTask | undefined {
    let task: unknown
    try { task = JSON.parse(raw) } catch { return undefined }
    if (task === null || typeof task !== 'object' || Array.isArray(task) || (task as UpstreamTask).id !== id) return undefined
    const rest = withNullTimes(task as UpstreamTask)
    return new StoredTask(raw, rest === task ? raw : JSON.stringify(rest), isFinalStatus((task as UpstreamTask).status))
  }

  /** A parsed copy of upstream's row. */
  get task (): UpstreamTask {
    return JSON.parse(this.raw) as UpstreamTask
  }
}

/** A JSON array of tasks' texts in order, `null` for an unknown id: a list without serializing anything. */
export function joinTexts (stored: ReadonlyArray<StoredTask | null>, pick: (task: StoredTask) => string): string {
  let out = '['
  for (let i = 0; i < stored.length; i++) {
    const task = stored[i]
    out += (i === 0 ? '' : ',') + (task == null ? 'null' : pick(task))
  }
  return out + ']'
}
