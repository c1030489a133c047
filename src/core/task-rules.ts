import type { UpstreamTask } from '../upstream/types.js'

/** Statuses after which a task never changes again (docs/upstream.md: MODAL stops polling but is not final). */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'CANCEL'])

export function isFinalStatus (status: unknown): boolean {
  return typeof status === 'string' && FINAL_STATUSES.has(status)
}

/** `"31%"` → 31; `""`, `null` or anything unparsable → null. */
export function progressPercent (progress: unknown): number | null {
  if (typeof progress !== 'string' || progress === '') return null
  const n = Number.parseFloat(progress)
  if (!Number.isFinite(n)) return null
  return Math.max(0, Math.min(100, Math.round(n)))
}

/** Submit codes that mean a task exists (docs/upstream.md: 1 success, 21 already exists, 22 queued). */
export const CREATED_CODES: ReadonlySet<number> = new Set([1, 21, 22])

export function isCreatedCode (code: unknown): boolean {
  return typeof code === 'number' && CREATED_CODES.has(code)
}

const TIME_FIELDS = ['submitTime', 'startTime', 'finishTime'] as const

/** A task as the gateway's own API (`/v1/tasks`) shows it: every time an integer or null. */
export type GatewayTask = Omit<UpstreamTask, typeof TIME_FIELDS[number]> & {
  submitTime?: number | null
  startTime?: number | null
  finishTime?: number | null
}

/**
 * The task with `""` times (some proxies' unset time) as null, as GraphQL
 * reads them; `0` and real values stay. The cached row is shared with the
 * drop-in routes, which answer it exactly as upstream sent it, so a row with
 * a `""` time is copied, never changed; any other row is returned as is.
 */
export function withNullTimes (task: UpstreamTask): GatewayTask {
  if (task.submitTime !== '' && task.startTime !== '' && task.finishTime !== '') return task as GatewayTask
  const copy: Record<string, unknown> = { ...task }
  for (const field of TIME_FIELDS) if (copy[field] === '') copy[field] = null
  return copy as GatewayTask
}
