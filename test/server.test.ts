import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'undici'
import { FakeUpstream } from './helpers/fake-upstream.js'
import { SERVER, startServer } from './helpers/server.js'

t.test('SIGTERM finishes the request in flight, refuses new ones, and exits 0', async (t) => {
  const upstream = await FakeUpstream.start()
  t.teardown(() => upstream.close())
  upstream.add({ id: '1' })
  const { child, url } = await startServer(t, { COMETAPI_BASE_URL: upstream.url, COMETAPI_KEY: 'sk-x', LOG_LEVEL: 'info' })

  upstream.hold()
  const inFlight = request(`${url}/v1/tasks/1`)
  await upstream.waitForCalls(1)
  child.kill('SIGTERM')
  const [code] = await Promise.all([
    once(child, 'exit').then(([c]) => c),
    (async () => {
      // Release upstream only once the server has stopped accepting connections.
      for (let i = 0; i < 200; i++) {
        try {
          await request(`${url}/healthz`, { reset: true })
        } catch {
          break
        }
        await new Promise((resolve) => setImmediate(resolve))
      }
      upstream.release()
    })()
  ])
  const res = await inFlight
  t.equal(res.statusCode, 200, 'the request in flight got its answer')
  t.equal((await res.body.json() as { id: string }).id, '1')
  t.equal(code, 0, 'exit code 0')
  await t.rejects(request(`${url}/healthz`), 'new connections are refused')
})

t.test('an invalid setting stops start-up with a message naming the variable', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: { PATH: process.env.PATH, BATCH_MAX_IDS: 'many', COMETAPI_KEY: 'sk-hidden-value' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => { stderr += String(chunk) })
  const [code] = await once(child, 'exit')
  t.equal(code, 1)
  t.match(stderr, /Invalid environment variable BATCH_MAX_IDS/)
  t.notMatch(stderr, /sk-hidden-value/)
})

t.test('in production with no key and no base URL it refuses to start, naming both variables', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: { PATH: process.env.PATH, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    stdout += String(chunk)
    // Serving made-up tasks is the failure: stop it rather than wait for the test's timeout.
    if (/Server listening/.test(stdout)) child.kill('SIGKILL')
  })
  child.stderr.on('data', (chunk) => { stderr += String(chunk) })
  const [code] = await once(child, 'exit')
  t.equal(code, 1)
  t.match(stderr, /NODE_ENV=production with neither COMETAPI_KEY nor COMETAPI_BASE_URL set: refusing to start/)
  t.notMatch(stdout, /Server listening|DEMO MODE/, 'nothing served')
})

t.test('with no key and no base URL it runs in demo mode on the built-in simulator', async (t) => {
  const { child, url, logs } = await startServer(t, { LOG_LEVEL: 'info' })
  const res = await request(`${url}/v1/tasks/1700000000000101`)
  t.equal(res.statusCode, 200)
  const task = await res.body.json() as { imageUrl: string }
  t.match(task, { id: '1700000000000101', status: 'SUCCESS' })
  t.equal(task.imageUrl, `${url}/mj/image/1700000000000101`, 'image links name the address the client used')
  const image = await request(task.imageUrl)
  t.equal(image.statusCode, 200)
  t.equal(image.headers['content-type'], 'image/svg+xml')
  await image.body.dump()
  t.match(logs.join('\n'), /DEMO MODE/)
  t.match(logs.join('\n'), /GraphiQL: http:\/\/127\.0\.0\.1:\d+\/graphiql/)
  child.kill('SIGINT')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
})
