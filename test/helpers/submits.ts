import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDeps } from '../../src/app.js'
import type { GatewayOptions } from '../../src/config.js'
import type { SimRoute, SimulatorCall, SimulatorOptions } from '../../src/simulator/index.js'
import { startSimulator, type StartedSimulator } from './simulator.js'
import { waitFor } from './gateway.js'

/**
 * The simulator's latency sleep, held until the test releases it: a request
 * given a latency fault waits at upstream, already in the call log, for as
 * long as the test needs a submit to stay in flight.
 */
export class Gate {
  readonly #waiting: Array<() => void> = []

  readonly sleep = (): Promise<void> => new Promise((resolve) => { this.#waiting.push(resolve) })

  get held (): number { return this.#waiting.length }

  /** Resolves once `n` requests are held. */
  async waitForHeld (n: number): Promise<void> {
    await waitFor(() => this.#waiting.length >= n, `${n} held upstream request(s)`)
  }

  /** Lets the oldest held request go on. */
  releaseOne (): void { this.#waiting.shift()?.() }

  releaseAll (): void { for (const resolve of this.#waiting.splice(0)) resolve() }
}

export const SUBMIT_ROUTES: readonly SimRoute[] = ['imagine', 'action', 'modal', 'describe', 'blend']

/** The submits upstream received, in order. */
export function submitCalls (sim: StartedSimulator['sim'], route?: SimRoute): SimulatorCall[] {
  return sim.allCalls.filter((call) => route === undefined ? SUBMIT_ROUTES.includes(call.route) : call.route === route)
}

type Options = Omit<GatewayOptions, 'upstream'> & { upstream?: GatewayOptions['upstream'] }

/**
 * A gateway in front of the simulator (on a real port, a fake clock, a held
 * latency gate), both closed with the test. `options.upstream.key` defaults to
 * the simulator's key unless pass-through auth is asked for.
 */
export async function gatewayOnSimulator (t: { teardown: (fn: () => unknown) => void }, options: Options = {}, simulator: SimulatorOptions = {}, deps: AppDeps = {}): Promise<StartedSimulator & { app: FastifyInstance, gate: Gate }> {
  const gate = new Gate()
  const started = await startSimulator(t, { sleep: gate.sleep, ...simulator })
  const passthrough = options.upstream?.auth === 'passthrough'
  const app = await buildApp({
    ...options,
    upstream: { baseUrl: started.url, ...(passthrough ? {} : { key: started.key }), ...options.upstream }
  }, { logger: false, ...deps })
  t.teardown(async () => {
    gate.releaseAll()
    await app.close()
  })
  return { ...started, app, gate }
}

/** A tiny PNG as the data URL describe and blend take. */
export const IMAGE = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='
