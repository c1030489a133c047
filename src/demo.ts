import type { FastifyBaseLogger } from 'fastify'
import { errors } from './errors.js'
import { createSimulator, SEED_TASK_IDS, type Simulator } from './simulator/index.js'

/**
 * Demo mode: with no COMETAPI_KEY, no COMETAPI_BASE_URL and no pass-through
 * auth, the gateway runs against an in-process simulator on loopback, so a
 * fresh clone shows real, moving data without a CometAPI account.
 */
export function isDemoMode (env: NodeJS.ProcessEnv): boolean {
  const set = (name: string): boolean => env[name] !== undefined && env[name] !== ''
  return !set('COMETAPI_KEY') && !set('COMETAPI_BASE_URL') && env.UPSTREAM_AUTH !== 'passthrough'
}

/**
 * Whether to start in demo mode. Production never does: there an unset key
 * and base URL is a secret mount that failed, and the simulator would serve
 * made-up tasks and accept submits as if they were real. Throws then.
 */
export function wantsDemoMode (env: NodeJS.ProcessEnv, production: boolean): boolean {
  if (!isDemoMode(env)) return false
  if (production) {
    throw new errors.InvalidConfig('NODE_ENV=production with neither COMETAPI_KEY nor COMETAPI_BASE_URL set: refusing to start, as demo mode would serve made-up tasks. Set COMETAPI_KEY (and COMETAPI_BASE_URL for a proxy), or UPSTREAM_AUTH=passthrough.')
  }
  return true
}

export interface DemoUpstream {
  readonly baseUrl: string
  readonly key: string
  readonly seedIds: readonly string[]
  close (): Promise<void>
}

/**
 * Starts the simulator on loopback. Its image links point at the gateway
 * (`publicUrl`), which relays `/mj/image/:id`, as CometAPI's own links point
 * at CometAPI: a browser can then load them wherever the gateway is reachable.
 */
export async function startDemoUpstream (publicUrl: string | undefined): Promise<DemoUpstream> {
  const sim: Simulator = await createSimulator({ logger: false, baseUrl: publicUrl })
  const baseUrl = await sim.listen({ host: '127.0.0.1', port: 0 })
  return { baseUrl, key: sim.defaultKey, seedIds: Object.values(SEED_TASK_IDS), close: () => sim.close() }
}

/** The start-up banner of demo mode: where to look and a request to paste. */
export function logDemoBanner (log: FastifyBaseLogger, gatewayUrl: string, demo: DemoUpstream): void {
  const ids = demo.seedIds.slice(0, 3).join(',')
  log.warn({ simulator: demo.baseUrl }, 'DEMO MODE: no COMETAPI_KEY or COMETAPI_BASE_URL set, serving tasks from the built-in CometAPI simulator')
  log.info(`GraphiQL: ${gatewayUrl}/graphiql`)
  log.info(`Try: curl '${gatewayUrl}/v1/tasks?ids=${ids}'`)
}
