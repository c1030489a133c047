import type { Scope } from './scope.js'
import { errors, isCredentialAnswer, isUpstreamRefusal, type GatewayError } from '../errors.js'
import { isFinalStatus } from './task-rules.js'
import { taskVersion } from './task-identity.js'
import type { Lookup } from './task-loader.js'
import { UNREF_TIMERS, type Timers } from './timers.js'
import type { UpstreamTask } from '../upstream/types.js'

/**
 * One event for one watch. `task` carries a task whose meaningful fields
 * differ from what this watch last got (or its first state); `error` with
 * `final: true` means the id left the watch (upstream does not know it, or
 * refused the credential with a 4xx), with `final: false` that upstream is
 * failing for now (sent once per outage, the id stays watched); `done` that
 * every id is final or gone; `shutdown` that the gateway is closing. After
 * `done` and `shutdown` the watch is closed.
 */
export type WatchEvent =
  | { readonly type: 'task', readonly id: string, readonly task: UpstreamTask, readonly version: string, readonly final: boolean }
  | { readonly type: 'error', readonly id: string, readonly error: GatewayError, readonly final: boolean }
  | { readonly type: 'done' }
  | { readonly type: 'shutdown' }

export interface WatchRequest {
  /** Task ids, already checked (src/core/ids.ts); repeats are watched once. */
  readonly ids: readonly string[]
  /** Whose tasks: the credential is kept only while some watch needs this partition. */
  readonly scope: Scope
  /** Who counts against WATCH_MAX_CONNECTIONS_PER_CLIENT (`app.security.client`). */
  readonly client: string
  /** Versions the client already has (an SSE resume): equal states are not sent again. */
  readonly seen?: ReadonlyMap<string, string>
  readonly onEvent: (event: WatchEvent) => void
}

export interface WatchHandle {
  /** The unique ids watched, in request order. */
  readonly ids: readonly string[]
  readonly closed: boolean
  /** Stops the watch; ids nobody else watches leave the watch set. Idempotent. */
  close (): void
}

export type WatchTimers = Timers

export interface WatcherOptions {
  loader: { loadMany (ids: readonly string[], scope: Scope): Lookup[] | Promise<Lookup[]> }
  intervalMs: number
  maxIdsPerConnection: number
  maxIds: number
  maxConnectionsPerClient: number
  /** How long an id may stay unlisted before it is reported unknown; NOT_FOUND_GRACE_MS unless set. */
  notFoundGraceMs?: number
  timers?: WatchTimers
  /**
   * Ticks on the wall clock's multiples of `intervalMs` (with `now`), so the
   * replicas sharing one Redis read every watched id at the same moment and
   * their leases merge those reads into one upstream fetch.
   */
  alignTo?: () => number
  log?: WatcherLog
}

/** The log levels the watcher writes at (a pino logger fits). */
export interface WatcherLog {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

export interface WatcherStats {
  /** Distinct (partition, id) pairs being polled. */
  readonly ids: number
  readonly partitions: number
  readonly watches: number
  readonly clients: number
  /** True while the next tick is scheduled; false whenever nothing is watched. */
  readonly timerArmed: boolean
  readonly ticks: number
}

interface Entry {
  readonly id: string
  readonly partition: Partition
  readonly watches: Set<Watch>
  task: UpstreamTask | undefined
  version: string | undefined
  /** The current upstream failure, while one lasts and the entry has no state to show. */
  error: GatewayError | undefined
  failing: boolean
  loading: boolean
  /** Consecutive reads that found no task (upstream may not list a just-submitted one yet). */
  misses: number
}

interface Partition {
  readonly name: string
  readonly scope: Scope
  readonly entries: Map<string, Entry>
}

interface Watch {
  readonly ids: readonly string[]
  readonly client: string
  readonly onEvent: (event: WatchEvent) => void
  /** Last version this watch has, per id (from `seen`, then from what it was sent). */
  readonly delivered: Map<string, string>
  /** Ids not final yet for this watch. */
  readonly open: Set<string>
  readonly entries: Entry[]
  /** Ids already watched by others when this watch joined: their current state is owed, unless an event went out first. */
  readonly replay: Set<string>
  closed: boolean
}

/**
 * Upstream may not list a task for a moment right after its submit, and the
 * dashboard watches a task straight after submitting it: an id is reported
 * unknown only once it has been missing for this long.
 */
export const NOT_FOUND_GRACE_MS = 10_000

/**
 * The process-wide live-update watcher. Every SSE stream and GraphQL
 * subscription registers its ids here; one poll loop then reads every watched
 * id once per WATCH_INTERVAL_MS through the task loader (cache, then the
 * batcher), so K watchers of overlapping ids cost ceil(unique ids /
 * BATCH_MAX_IDS) upstream calls per interval, not K times that.
 *
 * A watch first gets the current state of each id (loaded at once for ids
 * nobody watched yet, else the last read or the current outage, even while a
 * read is in flight), then only changes. An id leaves the watch set when it
 * turns final (after that state was delivered), when upstream has not listed
 * it for NOT_FOUND_GRACE_MS, when upstream refuses the lookup with a 4xx
 * (not 429), or when its last watch closes. Other upstream failures keep the
 * id watched: each watch hears of the failure once and the next good read
 * resumes.
 *
 * Ticks never overlap: the next one is scheduled when the last one ends, and
 * only while something is watched, so an idle gateway holds no timer.
 */
export class Watcher {
  readonly #opts: Readonly<Required<Omit<WatcherOptions, 'log' | 'alignTo'>>> & Pick<WatcherOptions, 'log' | 'alignTo'>
  readonly #partitions = new Map<string, Partition>()
  readonly #watches = new Set<Watch>()
  readonly #clients = new Map<string, number>()
  /** Null reads before an id is unknown: see the constructor. */
  readonly #notFoundReads: number
  #size = 0
  #timer: unknown
  #ticking: Promise<void> | undefined
  #ticks = 0
  #closed = false

  constructor (opts: WatcherOptions) {
    for (const key of ['intervalMs', 'maxIdsPerConnection', 'maxIds', 'maxConnectionsPerClient'] as const) {
      if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new RangeError(`Watcher: ${key} must be a positive integer`)
    }
    const grace = opts.notFoundGraceMs ?? NOT_FOUND_GRACE_MS
    if (!Number.isInteger(grace) || grace < 0) throw new RangeError('Watcher: notFoundGraceMs must be a non-negative integer')
    this.#opts = Object.freeze({ ...opts, notFoundGraceMs: grace, timers: opts.timers ?? UNREF_TIMERS })
    // Only an id's first read can come off-beat (the load when it joins); the ticks after it are at
    // least intervalMs apart, so 2 + ceil(grace / interval) null reads span the whole grace.
    this.#notFoundReads = grace === 0 ? 1 : 2 + Math.ceil(grace / opts.intervalMs)
  }

  get stats (): WatcherStats {
    return {
      ids: this.#size,
      partitions: this.#partitions.size,
      watches: this.#watches.size,
      clients: this.#clients.size,
      timerArmed: this.#timer !== undefined,
      ticks: this.#ticks
    }
  }

  /** Throws a coded error (400, 429 or 503) when a limit would be passed; nothing is registered then. */
  watch (req: WatchRequest): WatchHandle {
    if (this.#closed) throw new errors.Overloaded('the gateway is shutting down')
    const ids = [...new Set(req.ids)]
    const { maxIdsPerConnection, maxIds, maxConnectionsPerClient } = this.#opts
    if (ids.length > maxIdsPerConnection) throw new errors.WatchTooManyIds(ids.length, maxIdsPerConnection)
    const open = this.#clients.get(req.client) ?? 0
    if (open >= maxConnectionsPerClient) throw new errors.WatchTooManyStreams(open)
    const partition = this.#partitions.get(req.scope.partition)
    const added = partition === undefined ? ids.length : ids.filter((id) => !partition.entries.has(id)).length
    if (this.#size + added > maxIds) throw new errors.WatchFull(maxIds)

    const watch: Watch = {
      ids,
      client: req.client,
      onEvent: req.onEvent,
      delivered: new Map(req.seen ?? []),
      open: new Set(ids),
      entries: [],
      replay: new Set(),
      closed: false
    }
    this.#watches.add(watch)
    this.#clients.set(req.client, open + 1)
    const fresh: Entry[] = []
    const known: Entry[] = []
    for (const id of ids) {
      const { entry, created } = this.#entry(req.scope, id)
      entry.watches.add(watch)
      watch.entries.push(entry)
      if (created) fresh.push(entry)
      else {
        // Even while a read is in flight: a failing one would tell this watch nothing (sent once per outage).
        known.push(entry)
        watch.replay.add(id)
      }
    }
    const handle: WatchHandle = {
      ids,
      get closed () { return watch.closed },
      close: () => this.#close(watch)
    }
    // After the caller holds the handle: its first events may well close it.
    queueMicrotask(() => this.#guard('replaying states to a new watch', () => {
      for (const entry of known) {
        if (watch.closed) return
        // A read that landed first already told this watch; versions dedupe tasks, this dedupes errors.
        if (!watch.replay.delete(entry.id) || entry.partition.entries.get(entry.id) !== entry) continue
        if (entry.version !== undefined) this.#offer(entry, watch)
        else if (entry.error !== undefined) this.#send(watch, { type: 'error', id: entry.id, error: entry.error, final: false })
      }
    }))
    if (fresh.length > 0) this.#background(this.#load(req.scope, fresh), 'the first read of new ids')
    this.#arm()
    return handle
  }

  /** True while `id` is watched for `partition`: the shared tier then tells of its new answers at once. */
  watching (partition: string, id: string): boolean {
    return this.#partitions.get(partition)?.entries.has(id) === true
  }

  /**
   * Reads these ids again now, off-beat: an answer just landed for them
   * (fetched by another replica, or for another request) and is fresh in L1,
   * so subscribers hear of a change without waiting for the next tick. Ids
   * with a read in flight are left to it.
   */
  refresh (partition: string, ids: readonly string[]): void {
    const p = this.#partitions.get(partition)
    if (p === undefined || this.#closed) return
    const entries: Entry[] = []
    for (const id of ids) {
      const entry = p.entries.get(id)
      if (entry !== undefined && !entry.loading) entries.push(entry)
    }
    if (entries.length > 0) this.#background(this.#load(p.scope, entries), 'a refresh of landed ids')
  }

  /**
   * Polls every watched id once and delivers the changes. Resolves when the
   * deliveries are done; a call while a tick runs joins that tick.
   */
  tick (): Promise<void> {
    if (this.#ticking !== undefined) return this.#ticking
    if (this.#timer !== undefined) {
      this.#opts.timers.clearTimeout(this.#timer)
      this.#timer = undefined
    }
    this.#ticks++
    const loads: Array<Promise<void>> = []
    for (const partition of this.#partitions.values()) {
      const entries = [...partition.entries.values()].filter((e) => !e.loading)
      if (entries.length > 0) loads.push(this.#load(partition.scope, entries))
    }
    this.#ticking = Promise.all(loads)
      .catch((err: unknown) => { this.#opts.log?.error({ err }, 'watcher: tick failed') })
      .then(() => {
        this.#ticking = undefined
        this.#guard('scheduling the next tick', () => this.#arm())
      })
    return this.#ticking
  }

  /** Ends every watch with `shutdown` and stops polling. */
  close (): void {
    this.#closed = true
    for (const watch of [...this.#watches]) {
      this.#send(watch, { type: 'shutdown' })
      this.#close(watch)
    }
    this.#disarm()
  }

  #entry (scope: Scope, id: string): { entry: Entry, created: boolean } {
    let partition = this.#partitions.get(scope.partition)
    if (partition === undefined) {
      partition = { name: scope.partition, scope, entries: new Map() }
      this.#partitions.set(scope.partition, partition)
    }
    const existing = partition.entries.get(id)
    if (existing !== undefined) return { entry: existing, created: false }
    const entry: Entry = { id, partition, watches: new Set(), task: undefined, version: undefined, error: undefined, failing: false, loading: false, misses: 0 }
    partition.entries.set(id, entry)
    this.#size++
    return { entry, created: true }
  }

  /**
   * One loader call for the entries of one partition: the batcher turns it into
   * ceil(n / BATCH_MAX_IDS) upstream calls. Never rejects: each entry is
   * handled on its own, so one that throws cannot strand the ones after it.
   */
  async #load (scope: Scope, entries: Entry[]): Promise<void> {
    for (const entry of entries) entry.loading = true
    let lookups: readonly Lookup[]
    try {
      lookups = await this.#opts.loader.loadMany(entries.map((e) => e.id), scope)
    } catch (err) {
      // loadMany reports failures per id; this is a bug, not an outage, but the loop must survive it.
      lookups = entries.map(() => ({ error: err as GatewayError }))
    }
    for (const entry of entries) entry.loading = false
    let failed = 0
    let limited = 0
    let refused = 0
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!
      if (entry.partition.entries.get(entry.id) !== entry) continue
      try {
        const outcome = this.#apply(entry, scope, lookups[i])
        if (outcome === 'failed') failed++
        else if (outcome === 'limited') limited++
        else if (outcome === 'refused') refused++
      } catch (err) {
        // A bug or a task no code path expected: that id reports an internal error and stays watched.
        if (!entry.failing) this.#opts.log?.error({ err, id: entry.id }, 'watcher: processing a task failed; the id stays watched')
        this.#guard('reporting a failed task', () => this.#failed(entry, new errors.Internal()))
      }
    }
    if (failed > 0) this.#opts.log?.warn({ failed, ids: entries.length }, 'watcher: upstream lookups failed; the ids stay watched')
    // A tenant's refused or rate-limited credential is its owner's business, not the gateway's failure.
    if (limited > 0) this.#opts.log?.info({ limited, ids: entries.length }, 'watcher: upstream rate limits the credential; the ids stay watched')
    if (refused > 0) this.#opts.log?.info({ refused, ids: entries.length }, 'watcher: upstream refused the credential (4xx); the ids are dropped')
  }

  /** One lookup's outcome for its entry. */
  #apply (entry: Entry, scope: Scope, lookup: Lookup | undefined): 'ok' | 'failed' | 'limited' | 'refused' {
    if (lookup === undefined) throw new TypeError(`the loader answered no lookup for ${entry.id}`)
    if (lookup.error !== undefined) {
      // Only a tenant's own credential is final when refused; a refused gateway key is an
      // operator's outage to fix, and its watchers wait for it like any other outage.
      if (scope.credential !== undefined && isUpstreamRefusal(lookup.error)) {
        this.#gone(entry, lookup.error)
        return 'refused'
      }
      this.#failed(entry, lookup.error)
      return isCredentialAnswer(lookup.error) ? 'limited' : 'failed'
    }
    if (lookup.stored === null) {
      if (++entry.misses >= this.#notFoundReads) this.#gone(entry, new errors.TaskNotFound(entry.id))
    } else {
      this.#update(entry, lookup.stored.task)
    }
    return 'ok'
  }

  #update (entry: Entry, task: UpstreamTask): void {
    // First, as it may throw: the entry then keeps its state and its failure streak.
    const version = taskVersion(task)
    entry.misses = 0
    entry.failing = false
    entry.error = undefined
    if (version !== entry.version) {
      entry.task = task
      entry.version = version
    }
    for (const watch of [...entry.watches]) this.#offer(entry, watch)
    if (isFinalStatus(task.status)) this.#drop(entry)
  }

  /** Sends the entry's state to one watch unless it has it already, and settles a final id. */
  #offer (entry: Entry, watch: Watch): void {
    const final = isFinalStatus(entry.task!.status)
    if (watch.delivered.get(entry.id) !== entry.version) {
      watch.delivered.set(entry.id, entry.version!)
      this.#send(watch, { type: 'task', id: entry.id, task: entry.task!, version: entry.version!, final })
    }
    if (final) this.#settle(watch, entry)
  }

  /** The id is over for every watch of it: a final error, then out of the watch set. */
  #gone (entry: Entry, error: GatewayError): void {
    for (const watch of [...entry.watches]) {
      this.#send(watch, { type: 'error', id: entry.id, error, final: true })
      this.#settle(watch, entry)
    }
    this.#drop(entry)
  }

  #failed (entry: Entry, error: GatewayError): void {
    if (entry.failing) return
    entry.failing = true
    if (entry.version === undefined) entry.error = error
    for (const watch of [...entry.watches]) this.#send(watch, { type: 'error', id: entry.id, error, final: false })
  }

  /** The id is over for this watch; when all its ids are, the watch is done. */
  #settle (watch: Watch, entry: Entry): void {
    watch.open.delete(entry.id)
    entry.watches.delete(watch)
    if (watch.open.size === 0 && !watch.closed) {
      this.#send(watch, { type: 'done' })
      this.#close(watch)
    }
  }

  #send (watch: Watch, event: WatchEvent): void {
    if (watch.closed) return
    if (event.type === 'task' || event.type === 'error') watch.replay.delete(event.id)
    try {
      watch.onEvent(event)
    } catch (err) {
      // A broken listener must not stop the deliveries to everyone else.
      this.#opts.log?.warn({ err }, 'watcher: a listener threw; closing its watch')
      this.#close(watch)
    }
  }

  #close (watch: Watch): void {
    if (watch.closed) return
    watch.closed = true
    this.#watches.delete(watch)
    const left = (this.#clients.get(watch.client) ?? 1) - 1
    if (left === 0) this.#clients.delete(watch.client)
    else this.#clients.set(watch.client, left)
    for (const entry of watch.entries) {
      entry.watches.delete(watch)
      if (entry.watches.size === 0) this.#drop(entry)
    }
    watch.entries.length = 0
    if (this.#size === 0) this.#disarm()
  }

  /** Removes an entry from the watch set; the partition (and its credential) goes with its last entry. */
  #drop (entry: Entry): void {
    const { partition } = entry
    if (partition.entries.get(entry.id) !== entry) return
    partition.entries.delete(entry.id)
    this.#size--
    for (const watch of entry.watches) {
      const at = watch.entries.indexOf(entry)
      if (at >= 0) watch.entries.splice(at, 1)
    }
    entry.watches.clear()
    if (partition.entries.size === 0) this.#partitions.delete(partition.name)
    if (this.#size === 0) this.#disarm()
  }

  #arm (): void {
    if (this.#closed || this.#timer !== undefined || this.#ticking !== undefined || this.#size === 0) return
    const { intervalMs, alignTo } = this.#opts
    // Aligned, the wait is to the next multiple of the interval: ticks still start at least intervalMs apart.
    const delay = alignTo === undefined ? intervalMs : intervalMs - (alignTo() % intervalMs)
    this.#timer = this.#opts.timers.setTimeout(() => {
      this.#timer = undefined
      this.#background(this.tick(), 'a tick')
    }, delay)
  }

  /** Runs `fn`; an exception is logged, never thrown out of a timer or a microtask, where it would end the process. */
  #guard (what: string, fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.#opts.log?.error({ err }, `watcher: ${what} failed`)
    }
  }

  /** A promise nobody awaits: a rejection is logged, never left unhandled. */
  #background (work: Promise<void>, what: string): void {
    work.catch((err: unknown) => { this.#opts.log?.error({ err }, `watcher: ${what} failed`) })
  }

  #disarm (): void {
    if (this.#timer === undefined) return
    this.#opts.timers.clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
