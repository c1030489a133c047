import type { FastifyBaseLogger } from 'fastify'
import { errors } from './errors.js'
import type { AppDeps } from './plugins/gateway.js'
import { createSimulator, SEED_TASK_IDS, type Simulator, type SimulatorOptions } from './simulator/index.js'

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
  /** Where the simulator's image links point: `<imageBase>/mj/image/:id`. */
  readonly imageBase: string
  /** The tasks the keep-alive started and keeps, newest first; asking counts as someone watching. */
  recentTaskIds (): readonly string[]
  close (): Promise<void>
}

export interface DemoOptions {
  /** The gateway's own address, when it is known before it listens: the simulator's image links point there. */
  publicUrl?: string
  /** The simulator's clock (tests pass a manual one). */
  now?: () => number
  /** See SimulatorOptions.keepAlive; on by default. */
  keepAlive?: SimulatorOptions['keepAlive']
}

/**
 * The address a client on this machine reaches a server bound to `host`:`port`
 * at, or undefined while the port is not chosen yet (0).
 */
export function localUrl (host: string, port: number): string | undefined {
  if (port === 0) return undefined
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`
}

/**
 * Starts the simulator on loopback, with keep-alive on so the demo keeps
 * moving while someone watches. Its image links point at the gateway
 * (`publicUrl`) when given, else at the simulator itself; the gateway serves
 * them on the address each client used (plugins/demo-links.ts).
 */
export async function startDemoUpstream (opts: DemoOptions = {}): Promise<DemoUpstream> {
  const sim: Simulator = await createSimulator({
    logger: false,
    baseUrl: opts.publicUrl,
    keepAlive: opts.keepAlive ?? true,
    ...(opts.now === undefined ? {} : { now: opts.now })
  })
  const baseUrl = await sim.listen({ host: '127.0.0.1', port: 0 })
  return {
    baseUrl,
    key: sim.defaultKey,
    seedIds: Object.values(SEED_TASK_IDS),
    imageBase: sim.options.baseUrl ?? baseUrl,
    recentTaskIds: () => sim.keepAliveIds(),
    close: () => sim.close()
  }
}

/** What buildApp needs to know about the demo. */
export function demoDeps (demo: DemoUpstream): Pick<AppDeps, 'demoTaskIds' | 'demo'> {
  return { demoTaskIds: demo.seedIds, demo: { imageBase: demo.imageBase, recentTaskIds: () => demo.recentTaskIds() } }
}

/** The start-up banner of demo mode: where to look and a request to paste. */
export function logDemoBanner (log: FastifyBaseLogger, gatewayUrl: string, demo: DemoUpstream): void {
  const ids = demo.seedIds.slice(0, 3).join(',')
  log.warn({ simulator: demo.baseUrl }, 'DEMO MODE: no COMETAPI_KEY or COMETAPI_BASE_URL set, serving tasks from the built-in CometAPI simulator')
  log.info(`Dashboard: ${gatewayUrl}/ (a new demo task starts every few seconds while someone watches)`)
  log.info(`GraphiQL: ${gatewayUrl}/graphiql`)
  log.info(`Try: curl '${gatewayUrl}/v1/tasks?ids=${ids}'`)
}
