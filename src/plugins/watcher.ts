import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Watcher } from '../core/watcher.js'

declare module 'fastify' {
  interface FastifyInstance {
    watcher: Watcher
  }
}

/**
 * One watcher per app, fed by the gateway's loader. Streams are ended in
 * preClose: the server waits for open responses before it closes.
 */
export const watcherPlugin = fp(async function watcherPlugin (app: FastifyInstance) {
  const { loader, config } = app.gateway
  const watcher = new Watcher({
    loader,
    ...config.watch,
    log: app.log.child({ component: 'watcher' })
  })
  app.decorate('watcher', watcher)
  app.addHook('preClose', async () => { watcher.close() })
}, { name: 'watcher', dependencies: ['gateway'] })
