import t from 'tap'
import { buildApp } from '../src/app.js'
import { demoDeps, isDemoMode, localUrl, startDemoUpstream, wantsDemoMode } from '../src/demo.js'
import { errors } from '../src/errors.js'
import type { UpstreamTask } from '../src/upstream/types.js'
import { ManualClock, setup } from './helpers/gateway.js'

t.test('runs on the simulator only when no key, no base URL and no pass-through auth is configured', async (t) => {
  t.equal(isDemoMode({}), true)
  t.equal(isDemoMode({ COMETAPI_KEY: '', COMETAPI_BASE_URL: '' }), true, 'empty variables count as unset')
  t.equal(isDemoMode({ COMETAPI_KEY: 'sk-1' }), false)
  t.equal(isDemoMode({ COMETAPI_BASE_URL: 'http://127.0.0.1:9' }), false)
  t.equal(isDemoMode({ UPSTREAM_AUTH: 'passthrough' }), false)
})

t.test('production never starts in demo mode: it refuses, naming both variables; elsewhere demo mode stays', async (t) => {
  for (const env of [{}, { COMETAPI_KEY: '', COMETAPI_BASE_URL: '' }]) {
    t.throws(() => wantsDemoMode(env, true), new errors.InvalidConfig('NODE_ENV=production with neither COMETAPI_KEY nor COMETAPI_BASE_URL set: refusing to start, as demo mode would serve made-up tasks. Set COMETAPI_KEY (and COMETAPI_BASE_URL for a proxy), or UPSTREAM_AUTH=passthrough.'))
  }
  t.equal(wantsDemoMode({}, false), true, 'outside production: demo mode')
  t.equal(wantsDemoMode({ COMETAPI_KEY: 'sk-1' }, true), false)
  t.equal(wantsDemoMode({ COMETAPI_BASE_URL: 'http://127.0.0.1:9' }, true), false)
  t.equal(wantsDemoMode({ UPSTREAM_AUTH: 'passthrough' }, true), false, 'pass-through names its credentials per request')
})

t.test('a base URL with no key calls upstream without Authorization', async (t) => {
  const { app, upstream } = await setup(t, { upstream: { key: undefined } })
  upstream.add({ id: '1' })
  t.equal((await app.inject('/v1/tasks/1')).statusCode, 200)
  t.equal(upstream.calls.length, 1)
  t.equal(upstream.calls[0]!.authorization, undefined)
})

t.test('the demo still moves ten minutes after start: the dashboard learns of new tasks and the gateway serves them in progress', async (t) => {
  const clock = new ManualClock()
  const demo = await startDemoUpstream({ now: clock.now })
  t.teardown(() => demo.close())
  const app = await buildApp({ upstream: { baseUrl: demo.baseUrl, key: demo.key }, cache: { ttlMs: 1_000 } }, { logger: false, now: clock.now, ...demoDeps(demo) })
  t.teardown(() => app.close())
  const feed = async (): Promise<string[]> => {
    const res = await app.inject('/dashboard/demo-tasks')
    t.equal(res.headers['cache-control'], 'no-store')
    return (res.json() as { ids: string[] }).ids
  }
  const states = async (ids: readonly string[]): Promise<string[]> =>
    ((await app.inject(`/v1/tasks?ids=${ids.join(',')}`)).json() as UpstreamTask[]).map((task) => `${task.id} ${task.status} ${task.progress}`)

  t.strictSame(await feed(), [], 'nothing started at first: the live seeds move for the first minute')
  let ids: string[] = []
  // A dashboard open for ten minutes asks every 5 s.
  for (let elapsed = 0; elapsed < 600_000; elapsed += 5_000) {
    clock.advance(5_000)
    ids = await feed()
  }
  t.equal(ids.length, 12, 'the newest twelve, newest first')
  const atTen = await states(ids)
  t.ok(atTen.some((state) => !/ (SUCCESS|FAILURE) /.test(state)), `a task is unfinished ten minutes in: ${atTen[0]!}`)
  clock.advance(5_000)
  t.not((await states(ids)).join('\n'), atTen.join('\n'), 'and it moves')
})

t.test('without a known port the simulator links to itself; with one, to the gateway on an address a local client can use', async (t) => {
  t.equal(localUrl('127.0.0.1', 0), undefined)
  t.equal(localUrl('127.0.0.1', 3000), 'http://127.0.0.1:3000')
  t.equal(localUrl('0.0.0.0', 3000), 'http://127.0.0.1:3000')
  t.equal(localUrl('::', 8080), 'http://[::1]:8080')
  t.equal(localUrl('demo.example', 80), 'http://demo.example:80')
  const own = await startDemoUpstream()
  t.teardown(() => own.close())
  t.equal(own.imageBase, own.baseUrl)
  const pointed = await startDemoUpstream({ publicUrl: 'http://127.0.0.1:3000' })
  t.teardown(() => pointed.close())
  t.equal(pointed.imageBase, 'http://127.0.0.1:3000')
})
