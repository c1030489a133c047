import { buildApp } from '../../src/app.js'
import type { GatewayOptions } from '../../src/config.js'
import { childArgs, serve } from './child.js'

/** The system under test: the real app, built as tests build it, without logging. */
const app = await buildApp(childArgs<GatewayOptions>(), { logger: false })
const url = await app.listen({ port: 0, host: '127.0.0.1' })
serve(url, {
  gateway: () => ({ cacheEntries: app.gateway.cache.size, batcher: app.gateway.batcher.stats })
}, () => app.close())
