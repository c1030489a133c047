import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import type { GatewayOptions } from '../../src/config.js'
import { ManualClock } from './gateway.js'
import { startSimulator, type StartedSimulator } from './simulator.js'

/** A gateway for live-update tests (SSE, subscriptions), listening on 127.0.0.1 over the simulator. */
export interface LiveGateway {
  started: StartedSimulator
  app: FastifyInstance
  clock: ManualClock
  /** `http://127.0.0.1:<port>` */
  base: string
  /** The server's open sockets, for tests that drop the network. */
  sockets: Set<Socket>
  /** Simulator time passes, the cache expires, and the watcher polls once. */
  step: (ms: number) => Promise<void>
}

/**
 * The gateway on a manual clock with its watcher's real interval out of the
 * way: the test drives every tick itself through `step`.
 */
export async function liveGateway (t: { teardown: (fn: () => unknown) => void }, options: GatewayOptions = {}): Promise<LiveGateway> {
  const started = await startSimulator(t, { durationMs: 10_000 })
  const clock = new ManualClock()
  const app = await buildApp({
    ...options,
    upstream: { baseUrl: started.url, key: started.key, ...options.upstream },
    watch: { intervalMs: 3_600_000, ...options.watch }
  }, { logger: false, now: clock.now })
  const sockets = new Set<Socket>()
  t.teardown(async () => {
    const closing = app.close()
    // fetch may leave a connection it never sent a request on; the server would wait keepAliveTimeout (72 s) for it.
    for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy()
    await closing
  })
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    started,
    app,
    clock,
    base,
    sockets,
    step: async (ms) => {
      started.sim.advance(ms)
      clock.advance(3_000)
      await app.watcher.tick()
    }
  }
}
