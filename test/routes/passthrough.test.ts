import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { startSimulator } from '../helpers/simulator.js'

async function gatewayOnSimulator (t: Test) {
  const started = await startSimulator(t)
  const app = await buildApp({ upstream: { baseUrl: started.url, key: started.key } }, { logger: false })
  t.teardown(() => app.close())
  return { app, ...started }
}

t.test('relays a submit to upstream and the new task is readable at once through the batcher', async (t) => {
  const { app, sim, clock } = await gatewayOnSimulator(t)
  // An unknown id is remembered as unknown for a moment...
  const before = await app.inject({ method: 'POST', url: '/mj/task/list-by-condition', payload: { ids: ['1750000000000999'] } })
  t.same(before.json(), [])

  const submit = await app.inject({ method: 'POST', url: '/mj/submit/imagine', payload: { prompt: 'a red fox in snow', state: 'mine' } })
  t.equal(submit.statusCode, 200)
  const body = submit.json()
  t.match(body, { code: 1, description: String, result: /^\d+$/ })
  t.equal(sim.allCalls.filter((c) => c.route === 'imagine').length, 1, 'one submit reached upstream')

  clock.advance(60_000)
  const task = await app.inject(`/v1/tasks/${body.result}`)
  t.equal(task.statusCode, 200)
  t.match(task.json(), { id: body.result, prompt: 'a red fox in snow', state: 'mine', status: 'SUCCESS' })
  t.same(sim.calls.at(-1)!.ids, [body.result], 'read through list-by-condition')
})

t.test('passes upstream refusals through with upstream\'s status and body', async (t) => {
  const { app } = await gatewayOnSimulator(t)
  const banned = await app.inject({ method: 'POST', url: '/mj/submit/imagine', payload: { prompt: 'something banned' } })
  t.equal(banned.statusCode, 200)
  t.equal(banned.json().code, 24)
  const noTask = await app.inject({ method: 'POST', url: '/mj/submit/action', payload: { taskId: '1', customId: 'MJ::JOB::upsample::1::x' } })
  t.equal(noTask.statusCode, 400)
  t.match(noTask.json(), { type: 'upstream_error', code: 4 })
  const badAction = await app.inject({ method: 'POST', url: '/mj/submit/..%2Fadmin', payload: {} })
  t.equal(badAction.statusCode, 400)
  t.equal(badAction.json().code, 'GW_ERR_BAD_REQUEST')
})

t.test('relays task images from upstream', async (t) => {
  const { app, sim } = await gatewayOnSimulator(t)
  const res = await app.inject(`/mj/image/${sim.seedIds.success}`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^image\/svg\+xml/)
  t.match(res.body, /<svg/)
  const missing = await app.inject('/mj/image/1234')
  t.equal(missing.statusCode, 404)
})
