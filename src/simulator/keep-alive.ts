/**
 * Keeps a demo moving. The seeded tasks are all final a minute after
 * start-up; with keep-alive on, a new demo task starts every `everyMs` of
 * simulator time while someone is looking (an API request, or a read of the
 * demo task list). No timer runs: each look checks the clock, so a manual
 * clock drives it, and an idle simulator starts nothing. Only the newest
 * `keep` of these tasks are kept; older ones are forgotten (unknown from then on).
 */

export interface KeepAliveOptions {
  /** Simulator time between two started tasks. */
  readonly everyMs: number
  /** How many started tasks are kept; the oldest is forgotten when one more starts. */
  readonly keep: number
}

export const DEFAULT_KEEP_ALIVE: KeepAliveOptions = Object.freeze({ everyMs: 15_000, keep: 12 })

/** What a keep-alive needs from its simulator. */
export interface KeepAliveTarget {
  /** Starts the `n`th demo task (0-based) and returns its id, or undefined when it could not start. */
  start (n: number): string | undefined
  /** Removes a task from the store. */
  forget (id: string): void
}

export class KeepAlive {
  readonly #opts: KeepAliveOptions
  readonly #target: KeepAliveTarget
  /** Started and kept, oldest first. */
  readonly #ids: string[] = []
  #next: number
  #count = 0

  /** The first task is due `everyMs` after `startAt`: the live seeds move until then. */
  constructor (opts: KeepAliveOptions, startAt: number, target: KeepAliveTarget) {
    this.#opts = opts
    this.#target = target
    this.#next = startAt + opts.everyMs
  }

  /**
   * Someone looked at `now`: starts a task if one is due. At most one per
   * call, and the next is due `everyMs` after this one, so a long idle spell
   * is not made up for with a burst.
   */
  touch (now: number): void {
    if (now < this.#next) return
    this.#next = now + this.#opts.everyMs
    const id = this.#target.start(this.#count++)
    if (id === undefined) return
    this.#ids.push(id)
    while (this.#ids.length > this.#opts.keep) this.#target.forget(this.#ids.shift() as string)
  }

  /** The kept tasks, newest first. */
  ids (): string[] {
    return this.#ids.slice().reverse()
  }
}

/** Prompts of the started tasks, in turn. */
export const KEEP_ALIVE_PROMPTS: readonly string[] = Object.freeze([
  'a paper boat on a rainy street, ink wash',
  'a fox curled up in fresh snow, watercolor',
  'a tiny greenhouse on a floating rock, isometric',
  'an old lighthouse keeper reading by lamplight, oil painting',
  'a hot air balloon over lavender fields, golden hour',
  'a cozy reading nook with a sleeping cat, pastel',
  'a koi fish made of stained glass',
  'a desert city at night under two moons, cinematic'
])
