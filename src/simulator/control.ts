/**
 * The `/_sim/*` control routes, for driving a simulator that runs in another
 * process (demo, manual testing). No auth and never faulted: they are mounted
 * only with `controlRoute: true`, which is off by default.
 *
 *   GET/POST/PUT/DELETE /_sim/faults   list / add / replace / clear (body: FaultSpec or FaultSpec[])
 *   GET /_sim/calls[?all=1]            DELETE /_sim/calls
 *   POST /_sim/clock {advanceMs}       GET /_sim/state
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { SimulatorCall } from './calls.js'
import { FaultSpecError, type FaultControl, type FaultSpec } from './faults.js'
import type { ResolvedSimulatorOptions } from './options.js'
import { SEED_TASK_IDS } from './seed.js'
import { parseObject } from './wire.js'

/** The parts of a simulator the control routes read and drive. */
export interface ControlTarget {
  readonly options: ResolvedSimulatorOptions
  readonly url: string | null
  readonly calls: readonly SimulatorCall[]
  readonly allCalls: readonly SimulatorCall[]
  readonly faults: FaultControl
  resetCalls (): void
  now (): number
  advance (ms: number): number
}

function simulatorError (reply: FastifyReply, description: string): FastifyReply {
  return reply.code(400).send({ description, type: 'simulator_error', code: 4 })
}

/** Fault specs are validated by the controller, so any JSON is passed on. */
function specFrom (raw: unknown): FaultSpec | FaultSpec[] | undefined {
  if (typeof raw !== 'string') return undefined
  try {
    return JSON.parse(raw) as FaultSpec | FaultSpec[]
  } catch {
    return undefined
  }
}

/** Mount the control routes on `app`; `taskCount` reports the stored tasks for /_sim/state. */
export function registerControlRoutes (app: FastifyInstance, sim: ControlTarget, taskCount: () => number): void {
  const mutate = (op: 'add' | 'set') => async (request: FastifyRequest, reply: FastifyReply) => {
    const spec = specFrom(request.body)
    if (spec === undefined) return simulatorError(reply, 'body must be a JSON fault spec or an array of them')
    try {
      return { faults: sim.faults[op](spec) }
    } catch (err) {
      if (err instanceof FaultSpecError) return simulatorError(reply, err.message)
      throw err
    }
  }
  app.get('/_sim/faults', async () => ({ faults: sim.faults.list() }))
  app.post('/_sim/faults', mutate('add'))
  app.put('/_sim/faults', mutate('set'))
  app.delete('/_sim/faults', async () => {
    sim.faults.clear()
    return { faults: [] }
  })
  app.get<{ Querystring: { all?: string } }>('/_sim/calls', async (request) => ({
    calls: request.query.all === '1' || request.query.all === 'true' ? sim.allCalls : sim.calls
  }))
  app.delete('/_sim/calls', async () => {
    sim.resetCalls()
    return { calls: [] }
  })
  app.post('/_sim/clock', async (request, reply) => {
    const ms = parseObject(request.body)?.advanceMs
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      return simulatorError(reply, 'body must be {"advanceMs": <non-negative number>}')
    }
    return { now: sim.advance(ms) }
  })
  app.get('/_sim/state', async () => ({
    now: sim.now(),
    url: sim.url,
    keyLabels: sim.options.keys.map((_k, i) => `key#${i}`),
    seedIds: SEED_TASK_IDS,
    tasks: taskCount(),
    durationMs: sim.options.durationMs,
    faults: sim.faults.list()
  }))
}
