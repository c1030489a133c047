import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { configFromEnv } from './config.js'

/** How long in-flight requests get to finish after SIGTERM/SIGINT before the process gives up. */
const SHUTDOWN_GRACE_MS = 10_000

async function main (): Promise<void> {
  let options
  try {
    options = configFromEnv(process.env)
  } catch (err) {
    console.error((err as Error).message)
    process.exit(1)
  }
  const app = await buildApp(options)

  closeWithGrace({ delay: SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an uncaught error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
  })

  const { port, host } = app.gateway.config
  await app.listen({ port, host })
}

await main()
