import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

/**
 * server.close() only reaps keep-alive sockets idle at that moment; keep
 * reaping while requests in flight finish, or their sockets would hold
 * shutdown open.
 */
export const socketReaper = fp(async function socketReaper (app: FastifyInstance) {
  app.addHook('preClose', async () => {
    const reaper = setInterval(() => app.server.closeIdleConnections(), 50)
    reaper.unref()
    app.server.once('close', () => clearInterval(reaper))
  })
}, { name: 'socket-reaper' })
