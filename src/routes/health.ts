import type { FastifyInstance } from 'fastify'

/** Liveness and readiness; both stay open when client auth is on. */
export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/healthz', { config: { public: true } }, async function () {
    return { status: 'ok' }
  })

  // 200 while serving, the breaker open included (its state is in the body); 503 while starting or shutting down.
  app.get('/readyz', { config: { public: true } }, async function (request, reply) {
    const readiness = app.gateway.readiness()
    if (!readiness.ready) reply.code(503)
    return readiness
  })
}
