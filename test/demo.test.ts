import t from 'tap'
import { isDemoMode } from '../src/demo.js'
import { setup } from './helpers/gateway.js'

t.test('runs on the simulator only when no key, no base URL and no pass-through auth is configured', async (t) => {
  t.equal(isDemoMode({}), true)
  t.equal(isDemoMode({ COMETAPI_KEY: '', COMETAPI_BASE_URL: '' }), true, 'empty variables count as unset')
  t.equal(isDemoMode({ COMETAPI_KEY: 'sk-1' }), false)
  t.equal(isDemoMode({ COMETAPI_BASE_URL: 'http://127.0.0.1:9' }), false)
  t.equal(isDemoMode({ UPSTREAM_AUTH: 'passthrough' }), false)
})

t.test('a base URL with no key calls upstream without Authorization', async (t) => {
  const { app, upstream } = await setup(t, { upstream: { key: undefined } })
  upstream.add({ id: '1' })
  t.equal((await app.inject('/v1/tasks/1')).statusCode, 200)
  t.equal(upstream.calls.length, 1)
  t.equal(upstream.calls[0]!.authorization, undefined)
})
