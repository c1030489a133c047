/**
 * Test helpers for the CometAPI Midjourney simulator: a fake clock and a
 * `startSimulator(t, opts)` that listens on 127.0.0.1:0 and closes on teardown.
 */
import { createSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js'

export interface FakeClock {
  now: () => number
  advance: (ms: number) => number
  set: (ms: number) => void
}

/** A manual clock starting at `start` epoch ms (a 2025 date, larger than 32 bits like real timestamps). */
export function fakeClock (start = 1_750_000_000_000): FakeClock {
  let t = start
  return {
    now: () => t,
    advance: (ms) => (t += ms),
    set: (ms) => { t = ms }
  }
}

export interface StartedSimulator {
  sim: Simulator
  url: string
  key: string
  clock: FakeClock
  /** Headers with the default key and a JSON content type. */
  headers: Record<string, string>
}

/** Start a listening simulator on a fake clock (unless `opts.now` is given); closed at teardown. */
export async function startSimulator (
  t: { teardown: (fn: () => unknown) => void },
  opts: SimulatorOptions = {}
): Promise<StartedSimulator> {
  const clock = fakeClock()
  const sim = await createSimulator({ seed: 42, now: clock.now, ...opts })
  t.teardown(() => sim.close())
  const url = await sim.listen()
  const key = sim.defaultKey
  return { sim, url, key, clock, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } }
}
