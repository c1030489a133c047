import t from 'tap'
import { isDemoMode, wantsDemoMode } from '../src/demo.js'
import { errors } from '../src/errors.js'
import { setup } from './helpers/gateway.js'

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
