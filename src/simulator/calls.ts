/**
 * The call log: one entry per API request, so tests and benchmarks can see
 * what the gateway sent (batch sizes, keys, faults hit) without a proxy.
 */
import { sha256 } from '../core/credentials.js'
import type { FaultKind, SimRoute } from './faults.js'
import { parseObject } from './wire.js'

/** One logged API call. */
export interface SimulatorCall {
  readonly seq: number
  readonly route: SimRoute
  /** Simulator clock when the request arrived. */
  readonly at: number
  /** `key#<index>` for a configured key, null when the key is missing or unknown. */
  readonly keyLabel: string | null
  /** First 12 hex chars of sha256(presented key); null without a Bearer key. Raw keys are never logged. */
  readonly keyHash: string | null
  /** list-by-condition: ids exactly as sent (order and duplicates kept); null if the body had no valid ids list. */
  readonly ids: readonly string[] | null
  /** fetch / image: the path id; action / modal: the body's taskId. */
  readonly taskId: string | null
  /** Terminal fault applied, or 'latency' if only a delay was added. */
  readonly fault: FaultKind | null
  readonly latencyMs: number
  /** HTTP status sent; null while pending or when the request hung. */
  readonly statusCode: number | null
}

/** A call still being answered: the guard and the response hook fill in the rest. */
export type PendingCall = { -readonly [K in keyof SimulatorCall]: SimulatorCall[K] }

/** What the log needs from a request. */
export interface CallRequest {
  /** Simulator clock on arrival. */
  readonly at: number
  /** Bearer key as presented, undefined without one. */
  readonly key: string | undefined
  readonly params: unknown
  readonly body: unknown
  /** The raw request, which `answered` is later given to find the call. */
  readonly raw: object
}

/** Bounded so a long benchmark cannot grow memory without limit. */
const CALL_LOG_LIMIT = 100_000

function freezeCall (c: PendingCall): SimulatorCall {
  return Object.freeze({ ...c, ids: c.ids === null ? null : Object.freeze([...c.ids]) })
}

export class CallLog {
  readonly #keys: readonly string[]
  readonly #calls: PendingCall[] = []
  readonly #pending = new WeakMap<object, PendingCall>()
  #seq = 0

  /** `keys` are the configured keys, whose index makes the logged label. */
  constructor (keys: readonly string[]) {
    this.#keys = keys
  }

  /** Log a call as it arrives; the caller updates the returned entry as it is answered. */
  record (route: SimRoute, request: CallRequest): PendingCall {
    const { key } = request
    const index = key === undefined ? -1 : this.#keys.indexOf(key)
    let ids: string[] | null = null
    let taskId: string | null = null
    if (route === 'list-by-condition') {
      const list = parseObject(request.body)?.ids
      if (Array.isArray(list) && list.every((x) => typeof x === 'string')) ids = list
    } else if (route === 'fetch' || route === 'image') {
      taskId = (request.params as { id?: string }).id ?? null
    } else if (route === 'action' || route === 'modal') {
      const v = parseObject(request.body)?.taskId
      taskId = typeof v === 'string' ? v : null
    }
    const call: PendingCall = {
      seq: ++this.#seq,
      route,
      at: request.at,
      keyLabel: index >= 0 ? `key#${index}` : null,
      keyHash: key === undefined ? null : sha256(key).toString('hex').slice(0, 12),
      ids,
      taskId,
      fault: null,
      latencyMs: 0,
      statusCode: null
    }
    if (this.#calls.length >= CALL_LOG_LIMIT) this.#calls.shift()
    this.#calls.push(call)
    this.#pending.set(request.raw, call)
    return call
  }

  /** Note the status sent for a logged request (hung requests never get here). */
  answered (raw: object, statusCode: number): void {
    const call = this.#pending.get(raw)
    if (call !== undefined) call.statusCode = statusCode
  }

  /** Frozen snapshot of the list-by-condition calls. */
  listCalls (): readonly SimulatorCall[] {
    return Object.freeze(this.#calls.filter((c) => c.route === 'list-by-condition').map(freezeCall))
  }

  /** Frozen snapshot of every call. */
  all (): readonly SimulatorCall[] {
    return Object.freeze(this.#calls.map(freezeCall))
  }

  reset (): void {
    this.#calls.length = 0
  }
}
