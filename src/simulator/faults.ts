/**
 * Fault injection: a list of active faults, each scoped to one route (or all)
 * and either persistent or limited to the next N matching requests.
 *
 * Per request, every matching `latency` fault adds its delay (and uses one of
 * its `times`), then the first matching terminal fault (`error`, `rate-limit`,
 * `hang`, `malformed`) answers instead of the real handler.
 */

/** Route names used by faults and the call log. `*` in a fault means every API route. */
export type SimRoute = 'imagine' | 'action' | 'modal' | 'describe' | 'blend' | 'fetch' | 'list-by-condition' | 'image'
export const SIM_ROUTES: readonly SimRoute[] = Object.freeze(['imagine', 'action', 'modal', 'describe', 'blend', 'fetch', 'list-by-condition', 'image'])

export type FaultKind = 'latency' | 'error' | 'rate-limit' | 'hang' | 'malformed'
/** `text`: text/plain; `html`: an HTML error page; `object`: a JSON object where an array is expected; `truncated`: cut-off JSON; `empty`: empty JSON-typed body. */
export type MalformedBody = 'text' | 'html' | 'object' | 'truncated' | 'empty'

interface FaultBase {
  /** Route the fault applies to. Default `list-by-condition`; `*` = every API route. */
  route?: SimRoute | '*'
  /** Apply to the next N matching requests only; omitted = until cleared. */
  times?: number
}
export interface LatencyFault extends FaultBase { kind: 'latency', ms: number }
export interface ErrorFault extends FaultBase { kind: 'error', status?: number, description?: string, code?: number }
export interface RateLimitFault extends FaultBase { kind: 'rate-limit', retryAfterSeconds?: number }
export interface HangFault extends FaultBase { kind: 'hang' }
export interface MalformedFault extends FaultBase { kind: 'malformed', body?: MalformedBody, status?: number }
export type FaultSpec = LatencyFault | ErrorFault | RateLimitFault | HangFault | MalformedFault

export type NormalizedFault =
  | { readonly kind: 'latency', readonly route: SimRoute | '*', readonly times: number | null, readonly ms: number }
  | { readonly kind: 'error', readonly route: SimRoute | '*', readonly times: number | null, readonly status: number, readonly description: string, readonly code: number }
  | { readonly kind: 'rate-limit', readonly route: SimRoute | '*', readonly times: number | null, readonly retryAfterSeconds: number }
  | { readonly kind: 'hang', readonly route: SimRoute | '*', readonly times: number | null }
  | { readonly kind: 'malformed', readonly route: SimRoute | '*', readonly times: number | null, readonly body: MalformedBody, readonly status: number }

export type TerminalFault = Exclude<NormalizedFault, { kind: 'latency' }>

/** An active fault as listed by `faults.list()`: the spec plus what is left of it. */
export interface ActiveFault {
  readonly id: number
  readonly spec: NormalizedFault
  /** Requests left; null = persistent. */
  readonly remaining: number | null
}

export class FaultSpecError extends TypeError {}

const KINDS = new Set<FaultKind>(['latency', 'error', 'rate-limit', 'hang', 'malformed'])
const BODIES = new Set<MalformedBody>(['text', 'html', 'object', 'truncated', 'empty'])

function bad (where: string, field: string, expected: string, value: unknown): never {
  throw new FaultSpecError(`${where}.${field} must be ${expected}, got ${JSON.stringify(value) ?? String(value)}`)
}

/** Validate one fault spec; `where` names it in errors (e.g. `faults[0]`). */
export function normalizeFaultSpec (input: unknown, where = 'fault'): NormalizedFault {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new FaultSpecError(`${where} must be an object, got ${JSON.stringify(input) ?? String(input)}`)
  }
  const spec = input as Record<string, unknown>
  const kind = spec.kind as FaultKind
  if (!KINDS.has(kind)) bad(where, 'kind', `one of ${[...KINDS].join(', ')}`, spec.kind)
  const route = (spec.route ?? 'list-by-condition') as SimRoute | '*'
  if (route !== '*' && !SIM_ROUTES.includes(route)) bad(where, 'route', `"*" or one of ${SIM_ROUTES.join(', ')}`, spec.route)
  let times: number | null = null
  if (spec.times !== undefined && spec.times !== null) {
    if (!Number.isInteger(spec.times) || (spec.times as number) < 1) bad(where, 'times', 'a positive integer', spec.times)
    times = spec.times as number
  }
  const status = (field: string, fallback: number, min: number): number => {
    const v = spec[field] ?? fallback
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > 599) bad(where, field, `an HTTP status in [${min}, 599]`, v)
    return v as number
  }
  switch (kind) {
    case 'latency': {
      const ms = spec.ms
      if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) bad(where, 'ms', 'a non-negative number', ms)
      return Object.freeze({ kind, route, times, ms })
    }
    case 'error': {
      const description = spec.description ?? 'simulated_upstream_error '
      if (typeof description !== 'string') bad(where, 'description', 'a string', description)
      const code = spec.code ?? 4
      if (!Number.isInteger(code)) bad(where, 'code', 'an integer', code)
      return Object.freeze({ kind, route, times, status: status('status', 500, 400), description, code: code as number })
    }
    case 'rate-limit': {
      const retryAfterSeconds = spec.retryAfterSeconds ?? 1
      if (!Number.isInteger(retryAfterSeconds) || (retryAfterSeconds as number) < 0) bad(where, 'retryAfterSeconds', 'a non-negative integer', retryAfterSeconds)
      return Object.freeze({ kind, route, times, retryAfterSeconds: retryAfterSeconds as number })
    }
    case 'hang':
      return Object.freeze({ kind, route, times })
    case 'malformed': {
      const body = (spec.body ?? 'text') as MalformedBody
      if (!BODIES.has(body)) bad(where, 'body', `one of ${[...BODIES].join(', ')}`, spec.body)
      return Object.freeze({ kind, route, times, body, status: status('status', body === 'html' ? 502 : 200, 100) })
    }
  }
}

function toSpecs (input: unknown): NormalizedFault[] {
  const list = Array.isArray(input) ? input : [input]
  return list.map((f, i) => normalizeFaultSpec(f, Array.isArray(input) ? `fault[${i}]` : 'fault'))
}

/** The `sim.faults` handle as the simulator's users see it. */
export interface FaultControl {
  add (spec: FaultSpec | FaultSpec[]): readonly ActiveFault[]
  set (spec: FaultSpec | FaultSpec[]): readonly ActiveFault[]
  clear (id?: number): void
  list (): readonly ActiveFault[]
}

/** The `sim.faults` handle. Mutations validate first, so a bad spec changes nothing. */
export class FaultController implements FaultControl {
  #next = 1
  #active: Array<{ id: number, spec: NormalizedFault, remaining: number | null }> = []

  constructor (initial: readonly NormalizedFault[] = []) {
    for (const spec of initial) this.#push(spec)
  }

  #push (spec: NormalizedFault): void {
    this.#active.push({ id: this.#next++, spec, remaining: spec.times })
  }

  /** Add one or more faults after the existing ones; returns the active list. */
  add (spec: FaultSpec | FaultSpec[]): readonly ActiveFault[] {
    for (const s of toSpecs(spec)) this.#push(s)
    return this.list()
  }

  /** Replace all active faults. */
  set (spec: FaultSpec | FaultSpec[]): readonly ActiveFault[] {
    const specs = toSpecs(spec)
    this.#active = []
    for (const s of specs) this.#push(s)
    return this.list()
  }

  /** Remove every fault, or only the one with this id. */
  clear (id?: number): void {
    this.#active = id === undefined ? [] : this.#active.filter((f) => f.id !== id)
  }

  list (): readonly ActiveFault[] {
    return Object.freeze(this.#active.map((f) => Object.freeze({ ...f })))
  }

  /** Consume the faults that apply to one request on `route`. */
  take (route: SimRoute): { latencyMs: number, terminal: TerminalFault | null } {
    let latencyMs = 0
    let terminal: TerminalFault | null = null
    for (const f of this.#active) {
      if (f.spec.route !== '*' && f.spec.route !== route) continue
      if (f.spec.kind === 'latency') latencyMs += f.spec.ms
      else if (terminal === null) terminal = f.spec
      else continue
      if (f.remaining !== null) f.remaining--
    }
    this.#active = this.#active.filter((f) => f.remaining === null || f.remaining > 0)
    return { latencyMs, terminal }
  }
}
