import t from 'tap'
import { request } from 'undici'
import { createSimulator, SEED_TASK_IDS, SimulatorSubmitError } from '../../src/simulator/index.js'
import type { UpstreamTask } from '../../src/upstream/types.js'
import { startSimulator } from '../helpers/simulator.js'

interface Res {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: () => any
}

async function http (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, opts: { headers?: Record<string, string>, body?: unknown, headersTimeout?: number } = {}): Promise<Res> {
  const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body)
  const res = await request(url, { method, headers: opts.headers, body, headersTimeout: opts.headersTimeout })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) }
}

const TASK_FIELDS = ['id', 'action', 'status', 'progress', 'prompt', 'promptEn', 'description', 'failReason', 'imageUrl', 'state', 'submitTime', 'startTime', 'finishTime', 'properties', 'buttons']

t.test('rejects a missing or unknown key with 401 and an upstream error body on every API route', async (t) => {
  const { url } = await startSimulator(t)
  const routes: Array<['GET' | 'POST', string]> = [
    ['POST', '/mj/submit/imagine'], ['POST', '/mj/submit/action'], ['POST', '/mj/submit/modal'],
    ['GET', `/mj/task/${SEED_TASK_IDS.success}/fetch`], ['POST', '/mj/task/list-by-condition']
  ]
  for (const [method, path] of routes) {
    const variants: Array<Record<string, string>> = [{ 'content-type': 'application/json' }, { authorization: 'Bearer sk-wrong', 'content-type': 'application/json' }]
    for (const headers of variants) {
      const res = await http(method, url + path, { headers, body: method === 'POST' ? { prompt: 'x', ids: [] } : undefined })
      t.equal(res.status, 401, `${method} ${path}`)
      t.same(res.json(), { description: 'invalid_token', type: 'upstream_error', code: 4 })
    }
  }
})

t.test('returns list-by-condition results in storage order and omits unknown and foreign ids', async (t) => {
  const { sim, url, headers } = await startSimulator(t, { keys: ['sk-a', 'sk-b'], seedTasks: false })
  const a1 = sim.createTask('sk-a', { prompt: 'first' })
  const b1 = sim.createTask('sk-b', { prompt: 'foreign' })
  const a2 = sim.createTask('sk-a', { prompt: 'second' })
  const a3 = sim.createTask('sk-a', { prompt: 'third' })
  const res = await http('POST', url + '/mj/task/list-by-condition', {
    headers: { ...headers, authorization: 'Bearer sk-a' },
    body: { ids: [a3, 'nope', a1, b1, a3, a2, a1] }
  })
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /application\/json/)
  const list = res.json() as UpstreamTask[]
  t.same(list.map((x) => x.id), [a1, a2, a3], 'insertion order, duplicates collapsed, unknown and foreign left out')
  t.same(list.map((x) => x.prompt), ['first', 'second', 'third'])
  const asB = await http('POST', url + '/mj/task/list-by-condition', { headers: { ...headers, authorization: 'Bearer sk-b' }, body: { ids: [a1, b1] } })
  t.same((asB.json() as UpstreamTask[]).map((x) => x.id), [b1])
})

t.test('answers an empty array for missing, null or empty ids', async (t) => {
  const { url, headers } = await startSimulator(t)
  for (const body of ['{}', '{"ids":[]}', '{"ids":null}', 'null', '{"other":1}']) {
    const res = await http('POST', url + '/mj/task/list-by-condition', { headers, body })
    t.equal(res.status, 200, body)
    t.equal(res.text, '[]', body)
  }
})

t.test('answers a list-by-condition body that does not bind with 400 do_request_failed', async (t) => {
  const { url, headers } = await startSimulator(t)
  for (const body of ['not json', '', '[1,2]', '{"ids":"1"}', '{"ids":[1]}']) {
    const res = await http('POST', url + '/mj/task/list-by-condition', { headers, body })
    t.equal(res.status, 400, JSON.stringify(body))
    t.equal(res.text, '{"description":"do_request_failed ","type":"upstream_error","code":4}')
  }
  const noType = await http('POST', url + '/mj/task/list-by-condition', { headers: { authorization: headers.authorization as string }, body: 'ids=1' })
  t.equal(noType.status, 400)
})

t.test('answers fetch of an unknown or foreign id with 400 task_no_found and its trailing space', async (t) => {
  const { sim, url } = await startSimulator(t, { keys: ['sk-a', 'sk-b'] })
  const mine = sim.createTask('sk-b', { prompt: 'mine' })
  for (const id of ['123', SEED_TASK_IDS.success]) {
    const res = await http('GET', `${url}/mj/task/${id}/fetch`, { headers: { authorization: 'Bearer sk-b' } })
    t.equal(res.status, 400)
    t.equal(res.text, '{"description":"task_no_found ","type":"upstream_error","code":4}')
  }
  const ok = await http('GET', `${url}/mj/task/${mine}/fetch`, { headers: { authorization: 'Bearer sk-b' } })
  t.equal(ok.status, 200)
  t.equal(ok.json().id, mine)
})

t.test('moves a task from NOT_START through rising IN_PROGRESS to SUCCESS with nine buttons on the clock', async (t) => {
  const { url, headers, clock } = await startSimulator(t, { durationMs: 10_000 })
  const submit = await http('POST', url + '/mj/submit/imagine', { headers, body: { prompt: 'a red fox in the snow', state: 'my-state' } })
  t.equal(submit.status, 200)
  const answer = submit.json()
  t.equal(answer.code, 1)
  t.equal(answer.description, 'Submit success')
  t.match(answer.result, /^\d{16}$/)
  t.equal(answer.result.slice(0, 13), String(clock.now()), 'id = epoch ms + 3 digits')
  const id: string = answer.result
  const submitTime = clock.now()
  const fetchTask = async (): Promise<UpstreamTask> => (await http('GET', `${url}/mj/task/${id}/fetch`, { headers })).json()

  let task = await fetchTask()
  t.same(Object.keys(task), TASK_FIELDS, 'exactly the upstream fields, in order')
  t.match(task, { status: 'NOT_START', progress: '0%', imageUrl: '', failReason: '', state: 'my-state', action: 'IMAGINE', submitTime, startTime: 0, finishTime: 0, buttons: null, properties: null })

  clock.advance(1_000)
  task = await fetchTask()
  t.match(task, { status: 'SUBMITTED', progress: '0%', startTime: submitTime + 1_000, buttons: [] })

  clock.advance(1_000)
  task = await fetchTask()
  t.match(task, { status: 'IN_PROGRESS', progress: '15%', imageUrl: '' })

  const seen: number[] = []
  const previews = new Set<string>()
  for (let i = 0; i < 6; i++) {
    task = await fetchTask()
    seen.push(Number.parseInt(task.progress as string, 10))
    if (task.imageUrl !== '') {
      t.match(task.imageUrl, new RegExp(`^${url}/mj/image/${id}\\?rand=\\d+$`))
      previews.add(task.imageUrl as string)
      const again = await fetchTask()
      t.not(again.imageUrl, task.imageUrl, 'preview link changes on every read')
    }
    clock.advance(1_300)
  }
  t.same(seen, [...seen].sort((a, b) => a - b), 'progress never goes down')
  t.ok(seen.includes(31) && seen.includes(46), `progress steps seen: ${seen.join(',')}`)
  t.ok(previews.size > 0)

  clock.set(submitTime + 10_000)
  task = await fetchTask()
  t.match(task, { status: 'SUCCESS', progress: '100%', imageUrl: `${url}/mj/image/${id}`, finishTime: submitTime + 10_000, failReason: '' })
  t.same(task.properties, { finalPrompt: 'a red fox in the snow', finalZhPrompt: '' })
  const buttons = task.buttons ?? []
  t.equal(buttons.length, 9)
  t.same(buttons.map((b) => b.label), ['U1', 'U2', 'U3', 'U4', '', 'V1', 'V2', 'V3', 'V4'])
  for (const b of buttons) {
    t.same(Object.keys(b), ['customId', 'emoji', 'label', 'style', 'type'])
    t.equal(b.type, 2)
    t.ok((b.style as number) >= 1 && (b.style as number) <= 3)
  }
  t.match(buttons[0]?.customId, /^MJ::JOB::upsample::1::[0-9a-f-]{36}$/)
  t.match(buttons[4]?.customId, /^MJ::JOB::reroll::0::[0-9a-f-]{36}::SOLO$/)
  t.match(buttons[8]?.customId, /^MJ::JOB::variation::4::[0-9a-f-]{36}$/)
  t.equal(buttons[4]?.emoji, '🔄')
  t.equal(task.imageUrl, (await fetchTask()).imageUrl, 'final link is stable')
})

t.test('fails a task half-way with a failReason when its prompt matches a fail word, and times out after an hour', async (t) => {
  const { sim, key, clock } = await startSimulator(t, { durationMs: 10_000, failWords: ['explode'] })
  const id = sim.createTask(key, { prompt: 'please EXPLODE now' })
  clock.advance(3_000)
  t.match(sim.getTask(id), { status: 'IN_PROGRESS' })
  clock.advance(3_000)
  const task = sim.getTask(id)
  t.match(task, { status: 'FAILURE', progress: '', imageUrl: '', finishTime: clock.now(), failReason: /explode/ })
  t.same(task?.buttons, [])

  const slow = await createSimulator({ now: clock.now, durationMs: 2 * 3_600_000, seedTasks: false, seed: 1 })
  t.teardown(() => slow.close())
  const slowId = slow.createTask(slow.defaultKey, { prompt: 'slow' })
  clock.advance(3_600_000)
  t.match(slow.getTask(slowId), { status: 'FAILURE', failReason: /timeout/ })
})

t.test('refuses a banned prompt with code 24 and a missing prompt with 400 prompt_is_required', async (t) => {
  const { url, headers } = await startSimulator(t)
  const banned = await http('POST', url + '/mj/submit/imagine', { headers, body: { prompt: 'something NSFW here' } })
  t.equal(banned.status, 200)
  t.same(banned.json(), { code: 24, description: 'May contain banned words', result: null, properties: { promptEn: 'something NSFW here', bannedWord: 'nsfw' } })
  const missing = await http('POST', url + '/mj/submit/imagine', { headers, body: { prompt: '' } })
  t.equal(missing.status, 400)
  t.same(missing.json(), { description: 'prompt_is_required ', type: 'upstream_error', code: 4 })
  const notJson = await http('POST', url + '/mj/submit/imagine', { headers, body: '{' })
  t.same(notJson.json(), { description: 'bind_request_body_failed ', type: 'upstream_error', code: 4 })
  const badImage = await http('POST', url + '/mj/submit/imagine', { headers, body: { prompt: 'x', base64Array: ['not-base64'] } })
  t.match(badImage.json(), { code: 4, result: null })
})

t.test('creates follow-up tasks from a SUCCESS task\'s buttons and refuses actions on unfinished, unknown or foreign tasks', async (t) => {
  const { sim, url, headers, clock } = await startSimulator(t, { durationMs: 10_000, keys: ['sk-sim-demo', 'sk-other'] })
  const parent = sim.getTask(SEED_TASK_IDS.success)
  const u2 = parent?.buttons?.[1]?.customId as string
  const up = await http('POST', url + '/mj/submit/action', { headers, body: { taskId: SEED_TASK_IDS.success, customId: u2, state: 's1' } })
  t.equal(up.status, 200)
  t.match(up.json(), { code: 1, description: 'Submit success', result: /^\d{16}$/ })
  const upId: string = up.json().result
  t.match(sim.getTask(upId), { action: 'UPSCALE', status: 'NOT_START', state: 's1', prompt: parent?.prompt })

  const reroll = parent?.buttons?.find((b) => b.customId?.includes('reroll'))?.customId
  const rr = await http('POST', url + '/mj/submit/action', { headers, body: { taskId: SEED_TASK_IDS.success, customId: reroll } })
  t.match(sim.getTask(rr.json().result), { action: 'REROLL' })

  const early = await http('POST', url + '/mj/submit/action', { headers, body: { taskId: upId, customId: u2 } })
  t.equal(early.status, 400)
  t.same(early.json(), { description: 'task_status_not_success ', type: 'upstream_error', code: 4 })

  clock.advance(10_000)
  const done = sim.getTask(upId)
  t.match(done, { status: 'SUCCESS' })
  t.ok(done?.buttons?.some((b) => b.customId?.startsWith('MJ::JOB::upsample_v6_2x_subtle::1::')), 'upscale offers the upscaled-image buttons')
  const vary = done?.buttons?.find((b) => b.label === 'Vary (Strong)')?.customId
  const v = await http('POST', url + '/mj/submit/action', { headers, body: { taskId: upId, customId: vary } })
  t.match(sim.getTask(v.json().result), { action: 'HIGH_VARIATION' })

  const unknownButton = await http('POST', url + '/mj/submit/action', { headers, body: { taskId: upId, customId: 'MJ::JOB::upsample::9::nope' } })
  t.equal(unknownButton.status, 200)
  t.match(unknownButton.json(), { code: 4, result: null })

  for (const taskId of ['999', SEED_TASK_IDS.success]) {
    const res = await http('POST', url + '/mj/submit/action', { headers: { ...headers, authorization: taskId === '999' ? headers.authorization as string : 'Bearer sk-other' }, body: { taskId, customId: u2 } })
    t.equal(res.status, 400)
    t.same(res.json(), { description: 'task_not_found ', type: 'upstream_error', code: 4 })
  }
  const noCustom = await http('POST', url + '/mj/submit/action', { headers, body: { taskId: upId } })
  t.same(noCustom.json(), { description: 'custom_id_is_required ', type: 'upstream_error', code: 4 })
})

t.test('opens a modal from Custom Zoom and accepts /mj/submit/modal only for MODAL tasks', async (t) => {
  const { sim, url, headers } = await startSimulator(t, { durationMs: 10_000 })
  const zoom = sim.getTask(SEED_TASK_IDS.upscaled)?.buttons?.find((b) => b.label === 'Custom Zoom')?.customId
  const opened = await http('POST', url + '/mj/submit/action', { headers, body: { taskId: SEED_TASK_IDS.upscaled, customId: zoom } })
  t.match(opened.json(), { code: 21, description: 'Waiting for window confirm', result: /^\d{16}$/ })
  t.match(sim.getTask(opened.json().result), { status: 'MODAL', action: 'CUSTOM_ZOOM', progress: '0%' })

  const seeded = await http('POST', url + '/mj/submit/modal', { headers, body: { taskId: SEED_TASK_IDS.modal, prompt: 'zoomed out --zoom 2' } })
  t.match(seeded.json(), { code: 1, result: /^\d{16}$/ })
  t.match(sim.getTask(seeded.json().result), { action: 'MODAL', prompt: 'zoomed out --zoom 2', status: 'NOT_START' })
  t.match(sim.getTask(SEED_TASK_IDS.modal), { status: 'MODAL' }, 'the seeded MODAL task stays as it is')

  const notModal = await http('POST', url + '/mj/submit/modal', { headers, body: { taskId: SEED_TASK_IDS.success } })
  t.equal(notModal.status, 200)
  t.match(notModal.json(), { code: 4, result: null })
  const unknown = await http('POST', url + '/mj/submit/modal', { headers, body: { taskId: '42' } })
  t.same(unknown.json(), { description: 'task_not_found ', type: 'upstream_error', code: 4 })
})

t.test('serves a different SVG per task without auth, and 404 for unknown ids', async (t) => {
  const { sim, url, key } = await startSimulator(t)
  const a = await http('GET', `${url}/mj/image/${SEED_TASK_IDS.success}`)
  t.equal(a.status, 200)
  t.equal(a.headers['content-type'], 'image/svg+xml')
  t.match(a.text, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  t.match(a.text, /a lighthouse on a cliff at dawn/)
  const b = await http('GET', `${url}/mj/image/${SEED_TASK_IDS.failure}`)
  t.not(a.text, b.text)
  const id1 = sim.createTask(key, { prompt: 'same <prompt> & "quotes"' })
  const id2 = sim.createTask(key, { prompt: 'same <prompt> & "quotes"' })
  const c1 = await http('GET', `${url}/mj/image/${id1}?rand=1`)
  const c2 = await http('GET', `${url}/mj/image/${id2}`)
  t.not(c1.text.replaceAll(id1, ''), c2.text.replaceAll(id2, ''), 'same prompt, different task, different picture')
  t.match(c1.text, /same &lt;prompt&gt; &amp; &quot;quotes&quot;/, 'prompt text is escaped')
  t.equal(c1.headers['cache-control'], 'no-store')
  const missing = await http('GET', `${url}/mj/image/123`)
  t.equal(missing.status, 404)
  t.same(missing.json(), { description: 'task_no_found ', type: 'upstream_error', code: 4 })
})

t.test('seeds tasks in every state with stable ids, and live seeds progress on the clock', async (t) => {
  const { sim, url, headers, clock } = await startSimulator(t)
  t.same(sim.seedIds, SEED_TASK_IDS)
  const res = await http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: Object.values(SEED_TASK_IDS).reverse() } })
  const byId = new Map((res.json() as UpstreamTask[]).map((x) => [x.id, x]))
  t.same([...byId.keys()], Object.values(SEED_TASK_IDS), 'seeded in declaration order')
  const status = (name: keyof typeof SEED_TASK_IDS): unknown => byId.get(SEED_TASK_IDS[name])?.status
  t.same(
    Object.keys(SEED_TASK_IDS).map((n) => status(n as keyof typeof SEED_TASK_IDS)),
    ['SUCCESS', 'SUCCESS', 'FAILURE', 'CANCEL', 'MODAL', 'IN_PROGRESS', 'SUBMITTED', 'NOT_START']
  )
  t.match(byId.get(SEED_TASK_IDS.failure), { failReason: /Unrecognized parameter/ })
  t.equal(byId.get(SEED_TASK_IDS.success)?.buttons?.length, 9)

  clock.advance(30_000)
  t.match(sim.getTask(SEED_TASK_IDS.inProgress), { status: 'SUCCESS' })
  t.match(sim.getTask(SEED_TASK_IDS.submitted), { status: 'IN_PROGRESS' })
  clock.advance(30_000)
  for (const id of Object.values(SEED_TASK_IDS)) t.not(sim.getTask(id)?.status, 'IN_PROGRESS')
  t.match(sim.getTask(SEED_TASK_IDS.notStart), { status: 'SUCCESS' })
  clock.advance(10 * 3_600_000)
  t.match(sim.getTask(SEED_TASK_IDS.cancel), { status: 'CANCEL', startTime: 0 })
  t.match(sim.getTask(SEED_TASK_IDS.modal), { status: 'MODAL' })
  t.match(sim.getTask(SEED_TASK_IDS.success), { status: 'SUCCESS', finishTime: 1_700_000_030_000 })

  const bare = await createSimulator({ seedTasks: false })
  t.equal(bare.getTask(SEED_TASK_IDS.success), undefined)
})

t.test('adds latency through the injected sleep instead of waiting', async (t) => {
  const slept: number[] = []
  const { sim, url, headers } = await startSimulator(t, { latencyMs: 5, sleep: async (ms) => { slept.push(ms) } })
  sim.faults.add({ kind: 'latency', ms: 250, times: 1 })
  await http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: [] } })
  await http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: [] } })
  await http('GET', `${url}/mj/task/${SEED_TASK_IDS.success}/fetch`, { headers })
  t.same(slept, [255, 5, 5], 'global latency everywhere, the fault once on list-by-condition')
  t.same(sim.calls.map((c) => [c.fault, c.latencyMs]), [['latency', 255], [null, 5]])
})

t.test('answers error faults with the chosen status and upstream body for the next N requests only', async (t) => {
  const { sim, url, headers } = await startSimulator(t)
  sim.faults.set({ kind: 'error', status: 503, times: 2, description: 'service_unavailable ' })
  t.equal(sim.faults.list()[0]?.remaining, 2)
  for (let i = 0; i < 2; i++) {
    const res = await http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: [] } })
    t.equal(res.status, 503)
    t.same(res.json(), { description: 'service_unavailable ', type: 'upstream_error', code: 4 })
  }
  t.equal(sim.faults.list().length, 0, 'used up')
  t.equal((await http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: [] } })).status, 200)

  sim.faults.add({ kind: 'error', route: 'fetch' })
  t.equal((await http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: [] } })).status, 200, 'scoped to its route')
  for (let i = 0; i < 3; i++) t.equal((await http('GET', `${url}/mj/task/1/fetch`, { headers })).status, 500, 'persistent')
  sim.faults.clear()
  t.equal((await http('GET', `${url}/mj/task/${SEED_TASK_IDS.success}/fetch`, { headers })).status, 200)
  t.throws(() => sim.faults.add({ kind: 'error', status: 99 } as never), /fault\.status must be/)
  t.throws(() => sim.faults.add({ kind: 'boom' } as never), /fault\.kind must be/)
})

t.test('answers rate-limit faults with 429 and Retry-After', async (t) => {
  const { sim, url, headers } = await startSimulator(t)
  sim.faults.add({ kind: 'rate-limit', retryAfterSeconds: 7, times: 1 })
  const res = await http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: [] } })
  t.equal(res.status, 429)
  t.equal(res.headers['retry-after'], '7')
  t.match(res.json(), { type: 'upstream_error', code: 30 })
  t.equal((await http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: [] } })).status, 200)
})

t.test('hangs a request until the client gives up and still closes cleanly', async (t) => {
  const sim = await createSimulator({ seed: 1 })
  const url = await sim.listen()
  const headers = { authorization: `Bearer ${sim.defaultKey}`, 'content-type': 'application/json' }
  sim.faults.add({ kind: 'hang', times: 2 })
  await t.rejects(http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: [] }, headersTimeout: 100 }), { code: 'UND_ERR_HEADERS_TIMEOUT' })
  // A second hung request is still open when close() runs.
  const pending = http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: [] } })
  pending.catch(() => {})
  while (sim.calls.length < 2) await new Promise((resolve) => setImmediate(resolve))
  await sim.close()
  await t.rejects(pending, 'the hung client sees its socket closed')
  t.same(sim.calls.map((c) => [c.fault, c.statusCode]), [['hang', null], ['hang', null]])
})

t.test('sends malformed bodies: text, HTML, an object instead of an array, truncated JSON and empty', async (t) => {
  const { sim, url, headers } = await startSimulator(t)
  const post = async (): Promise<Res> => await http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: [SEED_TASK_IDS.success] } })
  sim.faults.add({ kind: 'malformed', body: 'text', times: 1 })
  let res = await post()
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /text\/plain/)
  t.throws(() => res.json())
  sim.faults.add({ kind: 'malformed', body: 'html', times: 1 })
  res = await post()
  t.equal(res.status, 502)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.text, /<html>/)
  sim.faults.add({ kind: 'malformed', body: 'object', times: 1 })
  res = await post()
  t.match(res.headers['content-type'], /application\/json/)
  t.notOk(Array.isArray(res.json()))
  t.equal(typeof res.json(), 'object')
  sim.faults.add({ kind: 'malformed', body: 'truncated', times: 1 })
  res = await post()
  t.throws(() => res.json())
  sim.faults.add({ kind: 'malformed', body: 'empty', times: 1 })
  res = await post()
  t.equal(res.text, '')
  res = await post()
  t.same((res.json() as UpstreamTask[]).map((x) => x.id), [SEED_TASK_IDS.success], 'back to normal')
})

t.test('logs list-by-condition calls with ids as sent, key label and hash but never the raw key', async (t) => {
  const { sim, url, headers, clock } = await startSimulator(t, { keys: ['sk-first', 'sk-second'] })
  await http('POST', url + '/mj/task/list-by-condition', { headers: { ...headers, authorization: 'Bearer sk-second' }, body: { ids: ['b', 'a', 'b'] } })
  clock.advance(5)
  await http('POST', url + '/mj/task/list-by-condition', { headers: { ...headers, authorization: 'Bearer sk-nope' }, body: 'garbage' })
  await http('GET', `${url}/mj/task/${SEED_TASK_IDS.success}/fetch`, { headers: { authorization: 'Bearer sk-first' } })
  const calls = sim.calls
  t.equal(calls.length, 2)
  t.match(calls[0], { route: 'list-by-condition', ids: ['b', 'a', 'b'], keyLabel: 'key#1', keyHash: /^[0-9a-f]{12}$/, at: clock.now() - 5, statusCode: 200, fault: null })
  t.match(calls[1], { ids: null, keyLabel: null, keyHash: /^[0-9a-f]{12}$/, at: clock.now(), statusCode: 401 })
  t.not(calls[0]?.keyHash, calls[1]?.keyHash)
  t.notMatch(JSON.stringify(sim.allCalls), /sk-/, 'raw keys never appear in the log')
  t.match(sim.allCalls[2], { route: 'fetch', taskId: SEED_TASK_IDS.success, keyLabel: 'key#0' })
  t.ok(Object.isFrozen(calls[0]))
  sim.resetCalls()
  t.same(sim.calls, [])
  t.same(sim.allCalls, [])
})

t.test('keeps the control route off by default', async (t) => {
  const { url } = await startSimulator(t)
  for (const path of ['/_sim/faults', '/_sim/calls', '/_sim/state']) t.equal((await http('GET', url + path)).status, 404, path)
})

t.test('drives faults, the call log and the clock through the control route when enabled', async (t) => {
  const { sim, url, headers } = await startSimulator(t, { controlRoute: true, durationMs: 1_000 })
  const added = await http('POST', url + '/_sim/faults', { body: { kind: 'error', status: 503, times: 1 } })
  t.equal(added.status, 200)
  t.match(added.json(), { faults: [{ id: 1, remaining: 1, spec: { kind: 'error', status: 503, route: 'list-by-condition' } }] })
  t.equal((await http('POST', url + '/_sim/faults', { body: { kind: 'nope' } })).status, 400)
  t.equal((await http('POST', url + '/mj/task/list-by-condition', { headers, body: { ids: ['1'] } })).status, 503)
  t.match((await http('GET', url + '/_sim/calls')).json(), { calls: [{ ids: ['1'], statusCode: 503, fault: 'error' }] })
  await http('PUT', url + '/_sim/faults', { body: [{ kind: 'hang', route: 'imagine' }] })
  t.match(sim.faults.list(), [{ spec: { kind: 'hang', route: 'imagine' } }])
  t.same((await http('DELETE', url + '/_sim/faults')).json(), { faults: [] })
  t.same(sim.faults.list(), [])
  t.same((await http('DELETE', url + '/_sim/calls')).json(), { calls: [] })
  t.same(sim.allCalls, [])

  const id = sim.createTask(sim.defaultKey, { prompt: 'clocked' })
  const before = sim.now()
  const clock = await http('POST', url + '/_sim/clock', { body: { advanceMs: 1_000 } })
  t.same(clock.json(), { now: before + 1_000 })
  t.match(sim.getTask(id), { status: 'SUCCESS' })
  t.equal((await http('POST', url + '/_sim/clock', { body: { advanceMs: -1 } })).status, 400)
  t.match((await http('GET', url + '/_sim/state')).json(), { url, keyLabels: ['key#0'], seedIds: SEED_TASK_IDS })
})

t.test('generates the same ids for the same seed and clock', async (t) => {
  const ids = async (): Promise<string[]> => {
    const sim = await createSimulator({ seed: 7, now: () => 1_750_000_000_000, seedTasks: false })
    const out = [1, 2, 3].map((n) => sim.createTask(sim.defaultKey, { prompt: `p${n}` }))
    out.push(sim.getTask(out[0] as string)?.id as string)
    return out
  }
  const a = await ids()
  t.same(a, await ids())
  t.equal(new Set(a.slice(0, 3)).size, 3, 'same millisecond, still unique')
  for (const id of a) t.match(id, /^1750000000000\d{3}$/)
})

t.test('validates options and names the bad option and value', async (t) => {
  await t.rejects(createSimulator({ durationMs: -5 }), { message: 'simulator option "durationMs" must be a positive integer (ms), got -5' })
  await t.rejects(createSimulator({ keys: [] }), /"keys"/)
  await t.rejects(createSimulator({ keys: ['a b'] }), /"keys"/)
  await t.rejects(createSimulator({ baseUrl: 'ftp://x' }), /"baseUrl".*ftp:\/\/x/)
  await t.rejects(createSimulator({ faults: [{ kind: 'latency', ms: -1 }] }), /faults\[0\]\.ms/)
  await t.rejects(createSimulator({ durationMS: 5 } as never), /unknown simulator option "durationMS"/)
  const sim = await createSimulator({ baseUrl: 'https://sim.example/', seed: 3 })
  t.ok(Object.isFrozen(sim.options))
  t.equal(sim.options.seed, 3)
  t.equal(sim.getTask(SEED_TASK_IDS.success)?.imageUrl, `https://sim.example/mj/image/${SEED_TASK_IDS.success}`)
  t.throws(() => sim.createTask(sim.defaultKey, { prompt: 'banned words' }), SimulatorSubmitError)
  t.throws(() => sim.createTask('sk-unknown', { prompt: 'x' }), /unknown key/)
})
