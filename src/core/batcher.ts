import { errors } from '../errors.js'
import type { Scope } from './scope.js'

/**
 * The answer for one id, as dataloader's batch function gives it: the task,
 * `null` when upstream does not know the id, or an `Error` for that id alone.
 */
export type FetchAnswer<T> = T | null | Error

/**
 * Fetches one chunk: answers in the order of `ids`, one per id. A rejection
 * fails every id of the chunk.
 */
export type FetchChunk<T> = (ids: readonly string[], scope: Scope) => Promise<ReadonlyArray<FetchAnswer<T>>>

export interface BatchReport {
  readonly ids: number
  /** Lookups answered by this call: ids plus every lookup that joined one of them. */
  readonly lookups: number
  readonly ok: boolean
}

export interface BatcherOptions<T> {
  maxIds: number
  windowMs: number
  maxInFlight: number
  maxQueued: number
  fetch: FetchChunk<T>
  /** Called once per requested id with upstream's answer, before any waiter resumes (they resume on a later microtask). */
  onResult?: (scope: Scope, id: string, value: T | null) => void
  onBatch?: (report: BatchReport) => void
  /** Told when `onResult` or `onBatch` throws (the lookups themselves still settle). */
  onObserverError?: (err: Error) => void
}

interface Waiter<T> {
  readonly promise: Promise<T | null>
  readonly resolve: (value: T | null) => void
  readonly reject: (err: Error) => void
  lookups: number
}

/** Lookups of one partition: never mixed with another credential's. */
interface Lane<T> {
  readonly scope: Scope
  readonly queue: Map<string, Waiter<T>>
  readonly inFlight: Map<string, Waiter<T>>
  active: number
  scheduled: boolean
  timer: NodeJS.Timeout | undefined
}

export interface BatcherStats {
  readonly lanes: number
  readonly queued: number
  readonly inFlight: number
  readonly activeCalls: number
}

function waiter<T> (): Waiter<T> {
  let resolve!: Waiter<T>['resolve']
  let reject!: Waiter<T>['reject']
  const promise = new Promise<T | null>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
  return { promise, resolve, reject, lookups: 1 }
}

/**
 * The process-wide batcher. Every lookup that misses the cache, from any
 * request on any surface, comes here and is merged with the others into
 * `POST /mj/task/list-by-condition` calls.
 *
 * Dispatch policy. A lookup joins a call already in flight for its id, or the
 * queued lookup for its id, so an id is never asked for twice at once. New
 * ids are queued, and the queue is looked at once per turn of the event loop
 * (setImmediate): by then every request whose bytes arrived in the same I/O
 * poll has run its handler and enqueued its ids, so a burst of separate HTTP
 * requests lands in one batch, while a lone request waits for nothing but
 * the current turn. At that point:
 *  - full chunks of `maxIds` always go at once;
 *  - a partial batch goes at once while fewer than `maxInFlight` calls are
 *    in flight for this partition. Otherwise upstream is busy and holding
 *    costs little: the batch is held, keeps growing, and goes when a call
 *    settles or `windowMs` after it was first held, whichever is first.
 * So an idle gateway adds no delay, and a loaded one converges to a few
 * large calls instead of many small ones. A fixed window on every lookup
 * would tax the lone request for nothing.
 *
 * A chunk that fails rejects only its own ids, and nothing about a failure
 * is remembered: the next lookup tries again.
 */
export class Batcher<T> {
  readonly #opts: Readonly<BatcherOptions<T>>
  readonly #lanes = new Map<string, Lane<T>>()
  #closed = false

  constructor (opts: BatcherOptions<T>) {
    this.#opts = Object.freeze({ ...opts })
  }

  load (id: string, scope: Scope): Promise<T | null> {
    let lane = this.#lanes.get(scope.partition)
    if (lane === undefined) {
      lane = { scope, queue: new Map(), inFlight: new Map(), active: 0, scheduled: false, timer: undefined }
      this.#lanes.set(scope.partition, lane)
    }
    const joined = lane.inFlight.get(id) ?? lane.queue.get(id)
    if (joined !== undefined) {
      joined.lookups++
      return joined.promise
    }
    if (lane.queue.size + lane.inFlight.size >= this.#opts.maxQueued) {
      this.#release(lane)
      return Promise.reject(new errors.Overloaded(`${this.#opts.maxQueued} task lookups are already waiting on upstream`))
    }
    const w = waiter<T>()
    lane.queue.set(id, w)
    this.#schedule(lane)
    return w.promise
  }

  get stats (): BatcherStats {
    let queued = 0
    let inFlight = 0
    let activeCalls = 0
    for (const lane of this.#lanes.values()) {
      queued += lane.queue.size
      inFlight += lane.inFlight.size
      activeCalls += lane.active
    }
    return { lanes: this.#lanes.size, queued, inFlight, activeCalls }
  }

  /** Sends whatever is held right away; calls in flight finish on their own. */
  close (): void {
    this.#closed = true
    for (const lane of this.#lanes.values()) this.#flush(lane)
  }

  #schedule (lane: Lane<T>): void {
    if (lane.scheduled) return
    lane.scheduled = true
    setImmediate(() => {
      lane.scheduled = false
      this.#flush(lane)
    })
  }

  #flush (lane: Lane<T>): void {
    const { maxIds, maxInFlight, windowMs } = this.#opts
    while (lane.queue.size >= maxIds) this.#dispatch(lane, maxIds)
    if (lane.queue.size > 0) {
      const held = lane.active >= maxInFlight && windowMs > 0 && !this.#closed
      if (!held) {
        this.#dispatch(lane, lane.queue.size)
      } else if (lane.timer === undefined) {
        lane.timer = setTimeout(() => {
          lane.timer = undefined
          if (lane.queue.size > 0) this.#dispatch(lane, Math.min(lane.queue.size, maxIds))
          this.#release(lane)
        }, windowMs)
        return
      } else {
        return
      }
    }
    if (lane.timer !== undefined) {
      clearTimeout(lane.timer)
      lane.timer = undefined
    }
    this.#release(lane)
  }

  /** Moves the first `count` queued ids into one upstream call. */
  #dispatch (lane: Lane<T>, count: number): void {
    const batch: Array<[string, Waiter<T>]> = []
    for (const entry of lane.queue) {
      batch.push(entry)
      lane.queue.delete(entry[0])
      lane.inFlight.set(entry[0], entry[1])
      if (batch.length === count) break
    }
    lane.active++
    const ids = batch.map(([id]) => id)
    this.#opts.fetch(ids, lane.scope).then(
      (answers) => this.#settle(lane, batch, answers, undefined),
      (err: Error) => this.#settle(lane, batch, undefined, err)
    )
  }

  #settle (lane: Lane<T>, batch: Array<[string, Waiter<T>]>, answers: ReadonlyArray<FetchAnswer<T>> | undefined, err: Error | undefined): void {
    if (answers !== undefined && answers.length !== batch.length) {
      err = new TypeError(`fetch answered ${answers.length} values for ${batch.length} ids`)
      answers = undefined
    }
    let lookups = 0
    for (let i = 0; i < batch.length; i++) {
      const [id, w] = batch[i]!
      lane.inFlight.delete(id)
      lookups += w.lookups
      const answer = answers === undefined ? err! : answers[i]!
      if (answer instanceof Error) {
        w.reject(answer)
        continue
      }
      w.resolve(answer)
      this.#report(() => this.#opts.onResult?.(lane.scope, id, answer))
    }
    lane.active--
    this.#report(() => this.#opts.onBatch?.({ ids: batch.length, lookups, ok: answers !== undefined }))
    if (lane.queue.size > 0) this.#schedule(lane)
    else this.#release(lane)
  }

  /** Runs an observer; one that throws must not strand the waiters or the lane's bookkeeping. */
  #report (observe: () => void): void {
    try {
      observe()
    } catch (err) {
      this.#opts.onObserverError?.(err as Error)
    }
  }

  /** Forgets an idle lane, so partitions do not accumulate. */
  #release (lane: Lane<T>): void {
    if (lane.queue.size === 0 && lane.inFlight.size === 0 && lane.active === 0 && !lane.scheduled && lane.timer === undefined) {
      this.#lanes.delete(lane.scope.partition)
    }
  }
}
