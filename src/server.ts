import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { configFromEnv, normalizeConfig, type GatewayOptions } from './config.js'
import { missingNodeFlags, tuneProcess } from './process-tuning.js'
import { demoDeps, localUrl, logDemoBanner, startDemoUpstream, wantsDemoMode, type DemoUpstream } from './demo.js'

/** How long in-flight requests get to finish after SIGTERM/SIGINT before the process gives up. */
const SHUTDOWN_GRACE_MS = 10_000

async function main (): Promise<void> {
  let options: GatewayOptions
  let demoMode: boolean
  try {
    options = configFromEnv(process.env)
    demoMode = wantsDemoMode(process.env, options.production === true)
  } catch (err) {
    console.error((err as Error).message)
    process.exit(1)
  }

  tuneProcess(normalizeConfig(options))
  let demo: DemoUpstream | undefined
  if (demoMode) {
    // Links a WebSocket subscriber sees; HTTP answers carry the address each client used.
    const { host, port } = normalizeConfig(options)
    demo = await startDemoUpstream({ publicUrl: localUrl(host, port) })
    options = { ...options, upstream: { ...options.upstream, baseUrl: demo.baseUrl, key: demo.key } }
  }
  const app = await buildApp(options, demo === undefined ? {} : demoDeps(demo))
  const missing = missingNodeFlags()
  if (missing.length > 0) app.log.warn({ missing }, 'Node was started without flags the gateway is tuned for (npm start and the Docker image pass them): peak memory will be higher')

  closeWithGrace({ delay: SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an uncaught error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
    await demo?.close()
  })

  const { port, host } = app.gateway.config
  const address = await app.listen({ port, host })
  if (demo !== undefined) logDemoBanner(app.log, address, demo)
}

await main()
