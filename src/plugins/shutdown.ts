import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { errors } from '../errors.js'

/** Where the instance is in its life: readiness reports it (src/plugins/gateway.ts). */
export type Phase = 'starting' | 'serving' | 'shutting down'

declare module 'fastify' {
  interface FastifyInstance {
    readonly phase: Phase
  }
}

/** Answered while shutting down: liveness, and readiness, which then says so. */
const HEALTH_URLS: ReadonlySet<string | undefined> = new Set(['/healthz', '/readyz'])

/**
 * The instance's phase, and a clean shutdown. Fastify is told not to answer
 * requests that arrive while it closes (on a busy keep-alive connection) with
 * its own uncoded 503: they get GW_ERR_SHUTTING_DOWN here instead, and
 * /readyz says `shutting down`. server.close() only reaps keep-alive sockets
 * idle at that moment; keep reaping while requests in flight finish, or their
 * sockets would hold shutdown open.
 */
export const lifecycle = fp(async function lifecycle (app: FastifyInstance) {
  let phase: Phase = 'starting'
  app.decorate('phase', { getter: () => phase })
  app.addHook('onReady', async () => { phase = 'serving' })
  app.addHook('onRequest', function refuseWhileClosing (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (phase !== 'shutting down' || HEALTH_URLS.has(request.routeOptions.url)) {
      done()
      return
    }
    reply.header('connection', 'close')
    done(new errors.ShuttingDown())
  })
  app.addHook('preClose', async () => {
    phase = 'shutting down'
    const reaper = setInterval(() => app.server.closeIdleConnections(), 50)
    reaper.unref()
    app.server.once('close', () => clearInterval(reaper))
  })
}, { name: 'lifecycle' })
