import t from 'tap'
import { request } from 'undici'
import { createSimulator, KEEP_ALIVE_PROMPTS, SEED_TASK_IDS } from '../../src/simulator/index.js'
import type { UpstreamTask } from '../../src/upstream/types.js'
import { startSimulator } from '../helpers/simulator.js'

const FINAL = new Set(['SUCCESS', 'FAILURE', 'CANCEL'])

async function list (url: string, headers: Record<string, string>, ids: readonly string[]): Promise<UpstreamTask[]> {
  const res = await request(`${url}/mj/task/list-by-condition`, { method: 'POST', headers, body: JSON.stringify({ ids }) })
  if (res.statusCode !== 200) throw new Error(`list-by-condition answered ${res.statusCode}: ${await res.body.text()}`)
  return await res.body.json() as UpstreamTask[]
}

async function storedTasks (url: string): Promise<number> {
  // The control routes are not looks: asking them starts nothing.
  const res = await request(`${url}/_sim/state`)
  return (await res.body.json() as { tasks: number }).tasks
}

t.test('the demo still moves ten minutes after start while someone watches, and keeps a bounded store', async (t) => {
  const { sim, url, headers, clock } = await startSimulator(t, { keepAlive: true, controlRoute: true })
  const seeds = Object.values(SEED_TASK_IDS)
  const started = new Set<string>()
  const snapshot = async (): Promise<Map<string, string>> => {
    // What a watcher does: read every id it knows, seeds and started ones.
    const ids = sim.keepAliveIds()
    for (const id of ids) started.add(id)
    const tasks = await list(url, headers, [...seeds, ...ids])
    return new Map(tasks.map((task) => [task.id, `${task.status} ${task.progress}`]))
  }
  let before = await snapshot()
  let quiet = 0
  // Ten minutes of simulator time, looked at every 5 s: something changes in every minute of it.
  for (let minute = 1; minute <= 10; minute++) {
    let changed = false
    for (let step = 0; step < 12; step++) {
      clock.advance(5_000)
      const now = await snapshot()
      if ([...now].some(([id, state]) => before.get(id) !== state)) changed = true
      before = now
    }
    if (!changed) quiet++
  }
  t.equal(quiet, 0, 'no minute of the ten went by without a task moving')
  const unfinished = [...before].filter(([, state]) => !FINAL.has(state.split(' ')[0]!))
  t.ok(unfinished.some(([id]) => !seeds.includes(id as typeof seeds[number])), `ten minutes in, a started task is unfinished: ${JSON.stringify(unfinished)}`)

  t.equal(started.size, 40, 'one task every 15 s of the 600 s')
  const kept = sim.keepAliveIds()
  t.equal(kept.length, 12, 'the newest 12 are kept')
  t.equal(await storedTasks(url), seeds.length + 12, 'older ones are forgotten: the store does not grow')
  const forgotten = [...started].filter((id) => !kept.includes(id))
  t.equal(forgotten.length, 28)
  const gone = await request(`${url}/mj/task/${forgotten[0]!}/fetch`, { headers })
  t.equal(gone.statusCode, 400, 'a forgotten task is unknown, as upstream forgets old tasks')
  t.strictSame(await gone.body.json(), { description: 'task_no_found ', type: 'upstream_error', code: 4 })
  t.strictSame(sim.allCalls.filter((c) => c.route === 'imagine' || c.route === 'action'), [], 'started in-process, not through the API')
})

t.test('with nobody looking nothing starts, and a long idle spell is not made up for with a burst', async (t) => {
  const { sim, url, headers, clock } = await startSimulator(t, { keepAlive: { everyMs: 10_000, keep: 5 }, controlRoute: true })
  clock.advance(3_600_000)
  t.equal(await storedTasks(url), 8, 'an hour without a look: the seeds only')
  t.equal(sim.keepAliveIds().length, 1, 'the first look after it starts one task')
  t.equal(sim.keepAliveIds().length, 1, 'and not another at the same moment')
  clock.advance(9_999)
  await list(url, headers, [])
  t.equal(await storedTasks(url), 9, 'not before everyMs has passed')
  clock.advance(1)
  await list(url, headers, [])
  t.equal(await storedTasks(url), 10, 'an API request is a look too')
  const [newest] = sim.keepAliveIds()
  t.match(sim.getTask(newest!), { status: 'NOT_START', action: 'IMAGINE', prompt: KEEP_ALIVE_PROMPTS[1] }, 'prompts are taken in turn')
})

t.test('every third started task presses a button of a finished one', async (t) => {
  const { sim, clock } = await startSimulator(t, { keepAlive: { everyMs: 30_000, keep: 4 }, seedTasks: false })
  const actions: string[] = []
  for (let i = 0; i < 6; i++) {
    clock.advance(30_000)
    actions.push(sim.getTask(sim.keepAliveIds()[0]!)?.action ?? 'none')
  }
  t.strictSame(actions, ['IMAGINE', 'IMAGINE', 'UPSCALE', 'IMAGINE', 'IMAGINE', 'UPSCALE'])
  const upscale = sim.getTask(sim.keepAliveIds()[0]!)!
  t.equal(upscale.prompt, KEEP_ALIVE_PROMPTS[4], 'the upscale of the newest finished grid')
})

t.test('keep-alive is off by default and its options are checked', async (t) => {
  const { sim, clock } = await startSimulator(t)
  clock.advance(600_000)
  t.strictSame(sim.keepAliveIds(), [])
  t.equal(sim.options.keepAlive, null)
  t.strictSame((await createSimulator({ keepAlive: true })).options.keepAlive, { everyMs: 15_000, keep: 12 })
  t.strictSame((await createSimulator({ keepAlive: { keep: 3 } })).options.keepAlive, { everyMs: 15_000, keep: 3 })
  const bad: Array<[unknown, RegExp]> = [
    ['yes', /"keepAlive" must be a boolean or \{everyMs\?, keep\?\}, got "yes"/],
    [{ everyMs: 0 }, /"keepAlive.everyMs" must be a positive integer \(ms\), got 0/],
    [{ keep: 0 }, /"keepAlive.keep" must be an integer from 1 to 1000, got 0/],
    [{ every: 5 }, /"keepAlive" must be an object with only everyMs and keep/]
  ]
  for (const [value, message] of bad) {
    await t.rejects(createSimulator({ keepAlive: value as boolean }), message, JSON.stringify(value))
  }
})
