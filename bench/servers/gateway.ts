import { buildApp } from '../../src/app.js'
import { normalizeConfig, type GatewayOptions } from '../../src/config.js'
import { tuneProcess } from '../../src/process-tuning.js'
import { childArgs, serve } from './child.js'

/** The system under test: the real app, tuned and built as src/server.ts does it, without logging. */
const options = childArgs<GatewayOptions>()
tuneProcess(normalizeConfig(options))
const app = await buildApp(options, { logger: false })
const url = await app.listen({ port: 0, host: '127.0.0.1' })
serve(url, {
  gateway: () => ({ cacheEntries: app.gateway.cache.size, batcher: app.gateway.batcher.stats })
}, () => app.close())
