/** The timers a core part schedules with: injected in tests, so they drive time themselves. */
export interface Timers {
  setTimeout (fn: () => void, ms: number): unknown
  clearTimeout (handle: unknown): void
}

/** Node's timers, unref'd: a pending poll or wait never holds the process open at shutdown. */
export const UNREF_TIMERS: Timers = Object.freeze({
  setTimeout: (fn: () => void, ms: number): unknown => {
    const t = setTimeout(fn, ms)
    t.unref()
    return t
  },
  clearTimeout: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout)
})
