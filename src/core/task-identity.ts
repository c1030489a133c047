import { createHash } from 'node:crypto'
import type { UpstreamTask } from '../upstream/types.js'

/** Keys whose value is noise: `rand` changes on every read of an unfinished preview. */
const NOISE_PARAMS = ['rand']

/** A URL without its noise parameters. */
export function withoutNoise (url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = new URLSearchParams(url.slice(q + 1))
  for (const name of NOISE_PARAMS) params.delete(name)
  const rest = params.toString()
  return url.slice(0, q) + (rest === '' ? '' : '?' + rest)
}

/** A value with object keys sorted at every level, so equal tasks serialize equally. */
export function canonical (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) out[key] = canonical((value as Record<string, unknown>)[key])
    return out
  }
  return value
}

/**
 * What a change is measured by: every field upstream sends, keys sorted, with
 * `rand` dropped from `imageUrl` and `videoUrl`. A short hash of it is the
 * task's version, which SSE event ids carry, so it must stay stable across
 * releases and replicas.
 */
export function taskVersion (task: UpstreamTask): string {
  const t = { ...task } as Record<string, unknown>
  for (const key of ['imageUrl', 'videoUrl']) if (typeof t[key] === 'string') t[key] = withoutNoise(t[key] as string)
  return createHash('sha256').update(JSON.stringify(canonical(t))).digest('base64url').slice(0, 10)
}
