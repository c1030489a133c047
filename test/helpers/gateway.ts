import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { buildApp, type AppDeps } from '../../src/app.js'
import type { GatewayOptions } from '../../src/config.js'
import { FakeUpstream } from './fake-upstream.js'

export const TEST_KEY = 'sk-test-secret-key-0123456789'

/** A manual clock for TTL tests. */
export class ManualClock {
  constructor (public time = 1_700_000_000_000) {}
  readonly now = (): number => this.time
  advance (ms: number): void { this.time += ms }
}

type TestOptions = Omit<GatewayOptions, 'upstream'> & { upstream?: GatewayOptions['upstream'] }

/**
 * A gateway in front of a fresh fake upstream, both torn down with the test.
 * Retries wait no real time: backoff sleeps resolve at once and are recorded.
 */
export async function setup (t: { teardown: (fn: () => unknown) => void }, options: TestOptions = {}, deps: AppDeps = {}): Promise<{
  app: FastifyInstance
  upstream: FakeUpstream
  sleeps: number[]
}> {
  const upstream = await FakeUpstream.start()
  const sleeps: number[] = []
  const app = await buildApp({
    ...options,
    // Load shedding reads the machine's event-loop delay; tests of other things must not see a busy CI box as overload.
    load: { maxEventLoopDelayMs: 0, ...options.load },
    upstream: { baseUrl: upstream.url, key: TEST_KEY, ...options.upstream }
  }, {
    logger: false,
    sleep: async (ms) => { sleeps.push(ms) },
    ...deps
  })
  t.teardown(async () => {
    await app.close()
    await upstream.close()
  })
  return { app, upstream, sleeps }
}

/**
 * `setup` listening on 127.0.0.1, for real clients: `url` is its /graphql,
 * and `seen` what `see` records of each response. onResponse, not onRequest:
 * it also runs when an earlier onRequest hook (client auth) refused the request.
 */
export async function graphqlOnPort<S> (t: { teardown: (fn: () => unknown) => void }, options: TestOptions,
  see: (request: FastifyRequest, reply: FastifyReply) => S | undefined): Promise<{ app: FastifyInstance, upstream: FakeUpstream, url: string, seen: S[] }> {
  const { app, upstream } = await setup(t, options)
  const seen: S[] = []
  app.addHook('onResponse', async (request, reply) => {
    const record = see(request, reply)
    if (record !== undefined) seen.push(record)
  })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, upstream, url: `${address}/graphql`, seen }
}

/** Turns the event loop until `check()` holds; fails after `turns` turns instead of hanging. */
export async function until (check: () => boolean, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (check()) return
    await new Promise((resolve) => setImmediate(resolve))
  }
  throw new Error('condition not reached')
}

/**
 * Waits for `check()` to hold while real sockets do their work (WebSocket,
 * SSE); fails with `what` after `ms` instead of hanging. This bounds a wait,
 * it asserts nothing about timing.
 */
export async function waitFor (check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
