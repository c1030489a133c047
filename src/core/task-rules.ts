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
