import { readFileSync } from 'node:fs'
import t from 'tap'
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript'
import { OPENAPI_PATH } from '../../src/routes/docs.js'
import type { components } from '../../clients/openapi.js'
import { durationMs, gatewayClient, getTask, getTasks, postTasks, type Task } from '../../clients/rest-recipe.js'
import { setup, TEST_KEY } from '../helpers/gateway.js'

/*
 * The README's REST recipe, as a TypeScript service runs it: types generated
 * by openapi-typescript from openapi.yaml (committed as clients/openapi.ts,
 * `npm run gen:types`), and clients/rest-recipe.ts (shown in the README as it
 * is) calling the gateway on a real port through openapi-fetch. The recipe
 * and these calls type-check in `npm test` (tsc covers clients/ and test/),
 * so a spec change that breaks them, or types that drift from the spec, fail it.
 */

const GENERATED = new URL('../../clients/openapi.ts', import.meta.url)
const RECIPE = new URL('../../clients/rest-recipe.ts', import.meta.url)
const README = new URL('../../README.md', import.meta.url)
const CLIENT_KEY = 'gw-client-key-openapi-fetch-0123'

type UpstreamTask = components['schemas']['UpstreamTask']

/** openapi-typescript's output for a spec, as `npm run gen:types` (its CLI, default options) writes it. */
async function generate (source: URL): Promise<string> {
  return COMMENT_HEADER + astToString(await openapiTS(source, { silent: true }))
}

async function gateway (t: Parameters<typeof setup>[0]) {
  const { app, upstream } = await setup(t, { security: { apiKeys: CLIENT_KEY } })
  const urls: string[] = []
  app.addHook('onRequest', async (request) => { urls.push(request.url) })
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, upstream, urls, client: gatewayClient(baseUrl, CLIENT_KEY) }
}

t.test('clients/openapi.ts is what openapi-typescript generates from openapi.yaml (else: npm run gen:types)', async (t) => {
  t.equal(readFileSync(GENERATED, 'utf8'), await generate(new URL(`file://${OPENAPI_PATH}`)))
})

t.test('types generated from the running gateway\'s /openapi.yaml are the committed ones', async (t) => {
  const { app } = await setup(t)
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal(await generate(new URL(`${baseUrl}/openapi.yaml`)), readFileSync(GENERATED, 'utf8'))
})

t.test('the README shows clients/rest-recipe.ts as it is', async (t) => {
  const readme = readFileSync(README, 'utf8')
  const section = readme.slice(readme.indexOf('### REST: openapi-typescript and openapi-fetch'))
  const block = /^```ts\n([\s\S]*?)^```$/m.exec(section)?.[1]
  t.equal(block, readFileSync(RECIPE, 'utf8'))
})

t.test('getTasks: ids as an array, request order, null for unknown ids, "" times as null', async (t) => {
  const { upstream, urls, client } = await gateway(t)
  upstream.add(
    { id: '1700000000000101', status: 'SUCCESS', progress: '100%', submitTime: 1_700_000_000_000, startTime: 1_700_000_002_000, finishTime: 1_700_000_030_000, videoUrl: 'https://x/v.mp4' },
    { id: '1700000000000202', status: 'NOT_START', progress: '', submitTime: '', startTime: '', finishTime: '', buttons: null, properties: null })

  const [sparse, unknown, done] = await getTasks(client, ['1700000000000202', 'nope', '1700000000000101'])
  t.strictSame(urls, ['/v1/tasks?ids=1700000000000202&ids=nope&ids=1700000000000101'], 'openapi-fetch sends the array as a repeated key')
  t.strictSame(upstream.calls.map((c) => [c.ids, c.authorization]), [[['1700000000000202', 'nope', '1700000000000101'], `Bearer ${TEST_KEY}`]])
  t.equal(unknown, null)
  // Typed as numbers or null: the generated types hold for what the gateway sends.
  const times: Array<number | null | undefined> = [sparse!.submitTime, sparse!.startTime, sparse!.finishTime]
  t.strictSame(times, [null, null, null])
  t.equal(sparse!.buttons, null)
  t.equal(durationMs(sparse!), null)
  t.strictSame([done!.id, done!.status, done!.videoUrl, durationMs(done!)], ['1700000000000101', 'SUCCESS', 'https://x/v.mp4', 28_000])

  t.strictSame(await getTasks(client, []), [], 'no ids: [] (an empty array sends no ids at all)')
  t.equal(urls.at(-1), '/v1/tasks')
  await t.rejects(getTasks(client, ['bad id!']), { message: '400 GW_ERR_INVALID_ID: ids[0] has characters outside A-Z a-z 0-9 _ . : -' })
})

t.test('getTask: the task, undefined for an unknown id, a coded error otherwise', async (t) => {
  const { upstream, client } = await gateway(t)
  upstream.add({ id: '1700000000000303', status: 'IN_PROGRESS', progress: '31%', prompt: 'a red fox', submitTime: 1_700_000_000_000, startTime: '', finishTime: 0 })

  const task: Task | undefined = await getTask(client, '1700000000000303')
  t.strictSame([task?.prompt, task?.progress, task?.submitTime, task?.startTime, task?.finishTime], ['a red fox', '31%', 1_700_000_000_000, null, 0])
  t.equal(await getTask(client, '1700000000000304'), undefined)
  upstream.script({ kind: 'status', status: 500 })
  await t.rejects(getTask(client, '1700000000000305'), { message: '502 UPSTREAM_ERROR: Upstream call failed: HTTP 500: scripted failure' })

  // The error body openapi-fetch hands back is typed as the gateway's.
  const missing = await client.GET('/v1/tasks/{id}', { params: { path: { id: '1700000000000304' } } })
  t.equal(missing.data, undefined)
  t.strictSame(missing.error, { statusCode: 404, code: 'GW_ERR_TASK_NOT_FOUND', error: 'Not Found', message: 'Task 1700000000000304 not found' })
})

t.test('postTasks, and the drop-in row of the same task typed as upstream sent it', async (t) => {
  const { upstream, client } = await gateway(t)
  upstream.add({ id: '1700000000000404', status: 'SUCCESS', submitTime: '', startTime: 1_700_000_000_000, finishTime: 1_700_000_030_000, botType: 'MID_JOURNEY' })

  const posted = await postTasks(client, ['1700000000000404', '1700000000000405'])
  t.strictSame(posted.map((task) => task === null ? null : [task.id, task.submitTime, task.botType]), [['1700000000000404', null, 'MID_JOURNEY'], null])

  // The drop-in route answers the cached row exactly as upstream sent it, `""` included, and its type says so.
  const dropIn = await client.GET('/mj/task/{id}/fetch', { params: { path: { id: '1700000000000404' } } })
  t.equal(dropIn.response.headers.get('x-cache'), 'hit')
  const row: UpstreamTask | undefined = dropIn.data
  const submitTime: number | '' | null | undefined = row?.submitTime
  t.equal(submitTime, '')
  t.equal(upstream.calls.length, 1)
})
