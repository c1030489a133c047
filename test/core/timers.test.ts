import t from 'tap'
import { UNREF_TIMERS } from '../../src/core/timers.js'

t.test('the real timers fire, never hold the process open, and cancel', async (t) => {
  let fired = false
  const handle = UNREF_TIMERS.setTimeout(() => { fired = true }, 0) as NodeJS.Timeout
  t.equal(handle.hasRef(), false, 'unref\'d: a pending poll does not keep the process alive')
  // A timer of the same delay set later fires after it (Node keeps each delay's timers in order): no race.
  const after = (): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, 0))
  await after()
  t.equal(fired, true)

  let cancelled = true
  UNREF_TIMERS.clearTimeout(UNREF_TIMERS.setTimeout(() => { cancelled = false }, 0))
  await after()
  t.equal(cancelled, true)
})
