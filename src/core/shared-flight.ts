import { errors, type GatewayError } from '../errors.js'
import type { Scope } from './scope.js'
import type { StoredTask } from './stored-task.js'
import { newerEntry, type CacheEntry, type TaskCache } from './task-cache.js'
import type { Landing, SharedStore } from './shared-store.js'
import { UNREF_TIMERS, type Timers } from './timers.js'

/** How a shared lookup ended: an entry (`hit` when read from L2, not fetched), or an error with any stale entry L2 held. */
export type SharedAnswer =
  | { readonly entry: CacheEntry, readonly hit: boolean, readonly error?: undefined, readonly stale?: undefined }
  | { readonly error: GatewayError, readonly stale: CacheEntry | undefined, readonly entry?: undefined, readonly hit?: undefined }

export type SharedOperation = 'acquire' | 'settle' | 'forget'

/** What /metrics counts; plain closures, called off the hot path (L1 hits never get here). */
export interface SharedObserver {
  lookups (result: 'hit' | 'miss', count: number): void
  /** A lookup found another replica's lease and waited for its result. */
  leaseWait (): void
  /** A waiting lookup found the lease gone without a result (its holder died) and took it over. */
  takeover (): void
  error (operation: SharedOperation): void
}

/** Who wants to hear of tasks that landed (here or on another replica): the live-update watcher. */
export interface LandingListener {
  watching (partition: string, id: string): boolean
  /** Ids of `partition` now fresh in L1 with a new answer. */
  landed (partition: string, ids: readonly string[]): void
}

export interface FlightTimers extends Timers {
  /** A monotonic clock for waits, in ms. */
  elapsed (): number
}

export interface SharedFlightOptions {
  store: SharedStore
  /** Upstream, batched: the batcher. */
  upstream: { load (id: string, scope: Scope): Promise<StoredTask | null> }
  /** L1: copies of L2 entries are kept with L2's expiry. */
  cache: Pick<TaskCache, 'entryFor' | 'put' | 'keepOf'>
  /** Wall clock of entries (`storedAt`, `freshUntil`); injectable for tests. */
  now: () => number
  /** How long a lease lasts: the upstream deadline plus a margin. */
  leaseMs: number
  /** Longest a lookup waits on other replicas' leases; past it, UPSTREAM_TIMEOUT (or a stale entry). */
  maxWaitMs: number
  /** A waiting lookup asks L2 again this often, in case an announcement was lost. */
  pollMs: number
  /** Most lookups on their way per partition (BATCH_MAX_QUEUED, as the batcher): more get 503. */
  maxQueued: number
  timers?: FlightTimers
  observer?: SharedObserver
}

type JobState = 'queued' | 'acquiring' | 'fetching' | 'waiting'

interface Job {
  readonly id: string
  readonly promise: Promise<SharedAnswer>
  readonly resolve: (answer: SharedAnswer) => void
  readonly deadline: number
  state: JobState
  stale: CacheEntry | undefined
  /** An announcement that came while the job's acquire was in flight: it answers the job if the lease was held. */
  noticed: Landing | undefined
  recheckAt: number
  waited: boolean
}

/** One partition's lookups: never mixed with another credential's. */
interface Lane {
  readonly scope: Scope
  readonly jobs: Map<string, Job>
  readonly queue: Set<Job>
  landings: Landing[]
  scheduled: boolean
  timer: unknown
  timerAt: number
}

const REAL_TIMERS: FlightTimers = { ...UNREF_TIMERS, elapsed: () => performance.now() }

/** Most ids in one acquire: a Lua script blocks Redis while it runs, so keep each short. */
const MAX_ACQUIRE = 500

/**
 * Cross-replica single flight over the shared tier (L2), between L1 and the
 * batcher. The L1 misses of one event-loop turn, per partition, cost one
 * round trip (`acquire`): fresh L2 entries answer at once (copied into L1
 * with their own expiry); ids nobody leases are leased by this replica and
 * go to the batcher; ids another replica leases wait for its announcement
 * (pub/sub), never going upstream while its lease lives. The holder settles
 * every upstream answer in one round trip per batch: L2 written, its leases
 * released at once, the answers announced with their values, so waiters
 * resume without reading L2 again. A waiter asks L2 again every `pollMs`
 * and when the lease should have run out: a dead holder's lease expires and
 * the waiter takes it over. No lookup waits past `maxWaitMs`.
 *
 * Whenever the store is down or a call fails, the ids go straight to the
 * batcher: the shared tier saves upstream calls, it never costs an answer.
 */
export class SharedFlight {
  readonly #opts: Readonly<Omit<SharedFlightOptions, 'timers'>>
  readonly #timers: FlightTimers
  readonly #lanes = new Map<string, Lane>()
  #listener: LandingListener | undefined
  #closed = false

  constructor (opts: SharedFlightOptions) {
    for (const key of ['leaseMs', 'maxWaitMs', 'pollMs', 'maxQueued'] as const) {
      if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new RangeError(`SharedFlight: ${key} must be a positive integer`)
    }
    this.#opts = Object.freeze({ ...opts })
    this.#timers = opts.timers ?? REAL_TIMERS
    opts.store.listen((partition, landings) => this.#notice(partition, landings))
  }

  /** The watcher, told of every answer that lands for an id it watches. */
  setListener (listener: LandingListener | undefined): void {
    this.#listener = listener
  }

  /** Lookups waiting, per state; for tests and diagnostics. */
  get stats (): Readonly<Record<JobState, number>> {
    const stats: Record<JobState, number> = { queued: 0, acquiring: 0, fetching: 0, waiting: 0 }
    for (const lane of this.#lanes.values()) for (const job of lane.jobs.values()) stats[job.state]++
    return stats
  }

  /** One L1 miss. A lookup for an id already on its way joins it. Never rejects. */
  load (id: string, scope: Scope): Promise<SharedAnswer> {
    let lane = this.#lanes.get(scope.partition)
    if (lane === undefined) {
      lane = { scope, jobs: new Map(), queue: new Set(), landings: [], scheduled: false, timer: undefined, timerAt: Infinity }
      this.#lanes.set(scope.partition, lane)
    }
    const joined = lane.jobs.get(id)
    if (joined !== undefined) return joined.promise
    if (lane.jobs.size >= this.#opts.maxQueued) {
      // Lookups waiting on other replicas count too: they hold memory like the batcher's queue.
      const error = new errors.Overloaded(`${this.#opts.maxQueued} task lookups are already waiting on upstream`)
      this.#release(lane)
      return Promise.resolve({ error, stale: undefined })
    }
    let resolve!: (answer: SharedAnswer) => void
    const promise = new Promise<SharedAnswer>((_resolve) => { resolve = _resolve })
    const job: Job = {
      id,
      promise,
      resolve,
      deadline: this.#timers.elapsed() + this.#opts.maxWaitMs,
      state: 'queued',
      stale: undefined,
      noticed: undefined,
      recheckAt: Infinity,
      waited: false
    }
    lane.jobs.set(id, job)
    this.#enqueue(lane, job)
    return promise
  }

  /** A submit created `id`: drop what L2 remembers of it (best effort, like the L1 delete). */
  forget (partition: string, id: string): void {
    if (!this.#opts.store.available) return
    this.#opts.store.forget(partition, id).catch(() => this.#opts.observer?.error('forget'))
  }

  /** Stops the recheck timers; lookups still waiting on another replica end with 503 (the gateway is going away). */
  close (): void {
    this.#closed = true
    for (const lane of this.#lanes.values()) {
      this.#disarm(lane)
      for (const job of [...lane.jobs.values()]) {
        if (job.state === 'waiting') this.#finish(lane, job, { error: new errors.Overloaded('the gateway is shutting down'), stale: job.stale })
      }
    }
  }

  #enqueue (lane: Lane, job: Job): void {
    job.state = 'queued'
    lane.queue.add(job)
    if (lane.scheduled) return
    lane.scheduled = true
    // Once per turn: every request whose bytes came in the same I/O poll shares one round trip.
    setImmediate(() => {
      lane.scheduled = false
      this.#flush(lane)
    })
  }

  #flush (lane: Lane): void {
    const jobs = [...lane.queue]
    lane.queue.clear()
    if (jobs.length === 0) return
    if (!this.#opts.store.available) {
      this.#fetch(lane, jobs)
      return
    }
    for (let i = 0; i < jobs.length; i += MAX_ACQUIRE) this.#acquire(lane, jobs.slice(i, i + MAX_ACQUIRE))
  }

  #acquire (lane: Lane, jobs: Job[]): void {
    for (const job of jobs) {
      job.state = 'acquiring'
      job.noticed = undefined
    }
    const { store, now, leaseMs, observer } = this.#opts
    store.acquire(lane.scope.partition, jobs.map((job) => job.id), now(), leaseMs).then((results) => {
      const fetch: Job[] = []
      let hits = 0
      let misses = 0
      for (let i = 0; i < jobs.length; i++) {
        const job = jobs[i]!
        const result = results[i]!
        // A lookup's first look at L2 is what the hit ratio is about; its rechecks while waiting are not.
        if (!job.waited) {
          if (result.kind === 'fresh') hits++
          else misses++
        }
        if (lane.jobs.get(job.id) !== job || job.state !== 'acquiring') continue
        if (result.kind === 'fresh') {
          this.#opts.cache.put(lane.scope.partition, job.id, result.entry)
          this.#finish(lane, job, { entry: result.entry, hit: true })
          continue
        }
        job.stale = newerEntry(job.stale, result.stale)
        if (result.kind === 'claimed') {
          if (job.waited) observer?.takeover()
          fetch.push(job)
        } else if (job.noticed !== undefined) {
          // The holder's announcement overtook this reply: that is the answer.
          this.#answer(lane, job, job.noticed, false)
        } else {
          this.#wait(lane, job, result.leaseLeftMs)
        }
      }
      observer?.lookups('hit', hits)
      observer?.lookups('miss', misses)
      if (fetch.length > 0) this.#fetch(lane, fetch)
      this.#release(lane)
    }, () => {
      observer?.error('acquire')
      const fetch: Job[] = []
      for (const job of jobs) {
        if (lane.jobs.get(job.id) !== job || job.state !== 'acquiring') continue
        if (job.noticed !== undefined) this.#answer(lane, job, job.noticed, false)
        else fetch.push(job)
      }
      this.#fetch(lane, fetch)
      this.#release(lane)
    })
  }

  /**
   * Upstream through the batcher; every answer lands in L1 at once, and in
   * L2 with the lane's next settle. A lookup that took over a dead holder's
   * lease still ends at its deadline; its fetch lands for the others anyway.
   */
  #fetch (lane: Lane, jobs: Job[]): void {
    const { partition } = lane.scope
    for (const job of jobs) {
      job.state = 'fetching'
      const late = job.waited
        ? this.#timers.setTimeout(() => this.#timeOut(lane, job), Math.max(0, job.deadline - this.#timers.elapsed()))
        : undefined
      this.#opts.upstream.load(job.id, lane.scope).then((stored) => {
        if (late !== undefined) this.#timers.clearTimeout(late)
        const { entry, keepMs } = this.#opts.cache.entryFor(stored)
        this.#opts.cache.put(partition, job.id, entry)
        this.#land(lane, { id: job.id, entry, keepMs })
        this.#finish(lane, job, { entry, hit: false })
      }, (err: GatewayError) => {
        if (late !== undefined) this.#timers.clearTimeout(late)
        // Only upstream's own failures are everyone's answer; a local refusal hands the lease back.
        this.#land(lane, isLocalRefusal(err) ? { id: job.id } : { id: job.id, error: err })
        this.#finish(lane, job, { error: err, stale: job.stale })
      })
    }
  }

  #timeOut (lane: Lane, job: Job): void {
    if (lane.jobs.get(job.id) !== job) return
    this.#finish(lane, job, { error: new errors.UpstreamTimeout(this.#opts.maxWaitMs), stale: job.stale })
    this.#release(lane)
  }

  /**
   * Queues a landing for the lane's next settle. The batcher answers every id
   * of one upstream call in one synchronous pass, so one call costs one settle.
   */
  #land (lane: Lane, landing: Landing): void {
    lane.landings.push(landing)
    if (lane.landings.length > 1) return
    setImmediate(() => {
      const landings = lane.landings
      lane.landings = []
      this.#tell(lane.scope.partition, landings)
      this.#release(lane)
      if (!this.#opts.store.available) return
      this.#opts.store.settle(lane.scope.partition, landings).catch(() => this.#opts.observer?.error('settle'))
    })
  }

  #wait (lane: Lane, job: Job, leaseLeftMs: number): void {
    if (!job.waited) {
      job.waited = true
      this.#opts.observer?.leaseWait()
    }
    job.state = 'waiting'
    const t = this.#timers.elapsed()
    // Just after the lease runs out (its holder died), or at the next poll, never past the deadline.
    job.recheckAt = Math.min(t + Math.max(1, Math.min(leaseLeftMs + 1, this.#opts.pollMs)), job.deadline)
    this.#arm(lane, job.recheckAt)
  }

  #arm (lane: Lane, at: number): void {
    if (this.#closed || at >= lane.timerAt) return
    this.#disarm(lane)
    lane.timerAt = at
    lane.timer = this.#timers.setTimeout(() => {
      lane.timer = undefined
      lane.timerAt = Infinity
      this.#recheck(lane)
    }, Math.max(0, at - this.#timers.elapsed()))
  }

  #disarm (lane: Lane): void {
    if (lane.timer === undefined) return
    this.#timers.clearTimeout(lane.timer)
    lane.timer = undefined
    lane.timerAt = Infinity
  }

  #recheck (lane: Lane): void {
    const t = this.#timers.elapsed()
    let next = Infinity
    for (const job of [...lane.jobs.values()]) {
      if (job.state !== 'waiting') continue
      if (job.deadline <= t) {
        this.#timeOut(lane, job)
      } else if (job.recheckAt <= t) {
        this.#enqueue(lane, job)
      } else {
        next = Math.min(next, job.recheckAt)
      }
    }
    if (next < Infinity) this.#arm(lane, next)
    this.#release(lane)
  }

  /** Another replica's answers: they resolve the lookups waiting here, and reach the watcher. */
  #notice (partition: string, landings: readonly Landing[]): void {
    const lane = this.#lanes.get(partition)
    if (lane !== undefined) {
      for (const landing of landings) {
        const job = lane.jobs.get(landing.id)
        if (job === undefined) continue
        if (job.state === 'waiting') {
          this.#answer(lane, job, landing, false)
        } else if (job.state === 'queued') {
          // A lookup that has not asked yet takes a fresh answer as it would have read it from L2: a
          // hit, counted as one. A failure, or an answer already stale, belongs to a fetch it never waited on.
          if (landing.entry !== undefined && landing.entry.freshUntil > this.#opts.now()) {
            this.#opts.observer?.lookups('hit', 1)
            this.#answer(lane, job, landing, true)
          }
        } else if (job.state === 'acquiring') {
          job.noticed = landing
        }
      }
      this.#release(lane)
    }
    this.#tell(partition, landings)
  }

  #answer (lane: Lane, job: Job, landing: Landing, hit: boolean): void {
    if (landing.error !== undefined) {
      this.#finish(lane, job, { error: landing.error, stale: job.stale })
      return
    }
    if (landing.entry === undefined) {
      // Handed back unanswered: ask again at once, and take the lease if it is free.
      this.#enqueue(lane, job)
      return
    }
    this.#opts.cache.put(lane.scope.partition, job.id, landing.entry)
    this.#finish(lane, job, { entry: landing.entry, hit })
  }

  /** Tells the watcher of the answers for ids it watches, once they are in L1. */
  #tell (partition: string, landings: readonly Landing[]): void {
    const listener = this.#listener
    if (listener === undefined) return
    const ids: string[] = []
    const now = this.#opts.now()
    for (const { id, entry } of landings) {
      if (entry === undefined || entry.freshUntil <= now || !listener.watching(partition, id)) continue
      this.#opts.cache.put(partition, id, entry)
      ids.push(id)
    }
    if (ids.length > 0) listener.landed(partition, ids)
  }

  #finish (lane: Lane, job: Job, answer: SharedAnswer): void {
    if (lane.jobs.get(job.id) === job) lane.jobs.delete(job.id)
    lane.queue.delete(job)
    job.resolve(answer)
  }

  /** Forgets an idle lane, so partitions do not accumulate. */
  #release (lane: Lane): void {
    if (lane.jobs.size > 0 || lane.queue.size > 0 || lane.landings.length > 0 || lane.scheduled) return
    this.#disarm(lane)
    if (this.#lanes.get(lane.scope.partition) === lane) this.#lanes.delete(lane.scope.partition)
  }
}

/** Failures of this replica rather than of upstream: the open breaker and a full queue. */
function isLocalRefusal (err: Error): boolean {
  return err instanceof errors.UpstreamCircuitOpen || err instanceof errors.Overloaded
}
