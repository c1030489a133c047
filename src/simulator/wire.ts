/**
 * The simulator's wire format, as new-api speaks it: raw request bodies read
 * the way Go's JSON bind reads them, and the shapes of its answers.
 */
import type { UpstreamErrorBody, UpstreamSubmitResult } from '../upstream/types.js'

/** A status and body that a route sends as-is. */
export interface Answer {
  readonly status: number
  readonly body: UpstreamSubmitResult | UpstreamErrorBody
}

/** new-api's own errors: HTTP 400 and `"<name> "` (its "%s %s" with an empty result). */
export function relayError (name: string, status = 400): Answer {
  return { status, body: { description: `${name} `, type: 'upstream_error', code: 4 } }
}

/** A submit body passed through from the proxy; code 1 is success, anything else a refusal. */
export function submitted (code: number, description: string, result: string | null, properties: Record<string, unknown> | null = {}): Answer {
  return { status: 200, body: { code, description, result, properties } }
}

/** JSON object body, or undefined when it is not JSON or not an object (Go's bind fails on both). */
export function parseObject (raw: unknown): Record<string, unknown> | undefined {
  if (typeof raw !== 'string') return undefined
  try {
    const v: unknown = JSON.parse(raw)
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** list-by-condition body → ids; undefined = not bindable (400). Missing/null ids → []. */
export function parseIds (raw: unknown): string[] | undefined {
  if (typeof raw !== 'string') return undefined
  let v: unknown
  try {
    v = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (v === null) return []
  if (typeof v !== 'object' || Array.isArray(v)) return undefined
  const ids = (v as { ids?: unknown }).ids
  if (ids === undefined || ids === null) return []
  if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) return undefined
  return ids
}
