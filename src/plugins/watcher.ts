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
  const { loader, config, shared, now } = app.gateway
  const watcher = new Watcher({
    loader,
    ...config.watch,
    // Replicas sharing a Redis tick together, so their reads of an id merge into one fetch.
    alignTo: shared === undefined ? undefined : now,
    log: app.log.child({ component: 'watcher' })
  })
  // Answers landing on any replica reach this replica's subscribers at once, not at the next tick.
  shared?.setListener({
    watching: (partition, id) => watcher.watching(partition, id),
    landed: (partition, ids) => watcher.refresh(partition, ids)
  })
  app.decorate('watcher', watcher)
  app.addHook('preClose', async () => {
    shared?.setListener(undefined)
    watcher.close()
  })
}, { name: 'watcher', dependencies: ['gateway'] })
