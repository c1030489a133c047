import t, { type Test } from 'tap'
import { request } from 'undici'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { clientOrigin } from '../../src/plugins/demo-links.js'
import { SEED_TASK_IDS } from '../../src/simulator/index.js'
import type { UpstreamTask } from '../../src/upstream/types.js'
import { setup, waitFor } from '../helpers/gateway.js'
import { startSimulator, type StartedSimulator } from '../helpers/simulator.js'

const ID = SEED_TASK_IDS.success

/** A gateway in demo mode on a simulator whose image links point at the simulator itself. */
async function demoGateway (t: Test, demo = true): Promise<{ app: FastifyInstance, origin: string, started: StartedSimulator }> {
  const started = await startSimulator(t)
  const app = await buildApp({ upstream: { baseUrl: started.url, key: started.key } }, {
    logger: false,
    ...(demo ? { demoTaskIds: Object.values(SEED_TASK_IDS), demo: { imageBase: started.url, recentTaskIds: () => [] } } : {})
  })
  t.teardown(() => app.close())
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, origin, started }
}

t.test('demo image links carry the address the client used, on every HTTP surface', async (t) => {
  const { origin, started } = await demoGateway(t)
  t.equal(started.sim.getTask(ID)?.imageUrl, `${started.url}/mj/image/${ID}`, 'upstream links to the simulator')
  const want = `${origin}/mj/image/${ID}`

  const rest = await request(`${origin}/v1/tasks/${ID}`)
  t.equal((await rest.body.json() as UpstreamTask).imageUrl, want, 'REST')
  const list = await request(`${origin}/v1/tasks?ids=${ID},${SEED_TASK_IDS.upscaled}`)
  t.strictSame((await list.body.json() as UpstreamTask[]).map((task) => task.imageUrl), [want, `${origin}/mj/image/${SEED_TASK_IDS.upscaled}`], 'REST list')
  const dropIn = await request(`${origin}/mj/task/${ID}/fetch`)
  t.equal((await dropIn.body.json() as UpstreamTask).imageUrl, want, 'drop-in fetch')
  const gql = await request(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ task(id: "${ID}") { imageUrl } }` })
  })
  t.strictSame(await gql.body.json(), { data: { task: { imageUrl: want } } }, 'GraphQL')

  const sse = await request(`${origin}/v1/tasks/stream?ids=${ID}`)
  const text = await sse.body.text()
  const task = /event: task\n(?:id: .*\n)?data: (.*)\n/.exec(text)
  t.equal((JSON.parse(task![1]!) as UpstreamTask).imageUrl, want, 'SSE')
  t.match(text, /event: done\n/, 'the stream still ends')

  const image = await request(want)
  t.equal(image.statusCode, 200, 'the link works')
  t.equal(image.headers['content-type'], 'image/svg+xml')
  await image.body.dump()
})

t.test('a rewritten SSE stream still releases its watch when the client goes', async (t) => {
  const { app, origin } = await demoGateway(t)
  const controller = new AbortController()
  // The clock stands still, so this seed stays unfinished and the stream open.
  const res = await request(`${origin}/v1/tasks/stream?ids=${SEED_TASK_IDS.notStart}`, { signal: controller.signal })
  let text = ''
  for await (const chunk of res.body) {
    text += String(chunk)
    if (text.includes('event: task')) break
  }
  t.match(text, /"status":"NOT_START"/)
  t.equal(app.watcher.stats.watches, 1)
  controller.abort()
  await waitFor(() => app.watcher.stats.watches === 0, 'the watch to be released')
  t.pass('released')
})

t.test('a name or a published port in the Host header is used as given; a Host that is not host[:port] changes nothing', async (t) => {
  const { app, started } = await demoGateway(t)
  const imageUrl = async (host: string): Promise<unknown> =>
    ((await app.inject({ url: `/v1/tasks/${ID}`, headers: { host } })).json() as UpstreamTask).imageUrl
  t.equal(await imageUrl('Gateway.Example:8080'), `http://gateway.example:8080/mj/image/${ID}`)
  t.equal(await imageUrl('[::1]:3000'), `http://[::1]:3000/mj/image/${ID}`)
  const unchanged = `${started.url}/mj/image/${ID}`
  for (const host of ['evil.example/x?', 'evil.example"', 'a b', 'evil.example:80@x', '-bad.example', 'x'.repeat(300)]) {
    t.equal(await imageUrl(host), unchanged, JSON.stringify(host.slice(0, 20)))
  }
})

t.test('outside demo mode, and for links that are not the simulator\'s, nothing is rewritten', async (t) => {
  const { origin, started } = await demoGateway(t, false)
  const rest = await request(`${origin}/v1/tasks/${ID}`)
  t.equal((await rest.body.json() as UpstreamTask).imageUrl, `${started.url}/mj/image/${ID}`)

  const { app, upstream } = await setup(t, {}, { demo: { imageBase: 'http://127.0.0.1:9', recentTaskIds: () => [] } })
  upstream.add({ id: '1', status: 'SUCCESS', imageUrl: 'https://cdn.example/mj/image/1', prompt: 'see http://127.0.0.1:9/mj/images/' })
  const res = await app.inject({ url: '/v1/tasks/1', headers: { host: 'gateway.example' } })
  t.equal((res.json() as UpstreamTask).imageUrl, 'https://cdn.example/mj/image/1')
  t.equal((res.json() as UpstreamTask).prompt, 'see http://127.0.0.1:9/mj/images/')
})

t.test('clientOrigin accepts host[:port] only', async (t) => {
  t.equal(clientOrigin({ host: '127.0.0.1:3000', protocol: 'http' }), 'http://127.0.0.1:3000')
  t.equal(clientOrigin({ host: 'demo.example', protocol: 'https' }), 'https://demo.example')
  t.equal(clientOrigin({ host: 'demo.example\r\nx-injected: 1', protocol: 'http' }), undefined)
  t.equal(clientOrigin({ host: 'demo.example', protocol: 'javascript' as 'http' }), undefined)
  t.equal(clientOrigin({ host: undefined as unknown as string, protocol: 'http' }), undefined)
})
