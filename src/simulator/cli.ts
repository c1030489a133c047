/**
 * Standalone simulator: `npm run simulator`.
 *
 * Env: SIM_PORT (default 4000), SIM_HOST (default 127.0.0.1), SIM_KEYS
 * (comma-separated, default sk-sim-demo), SIM_DURATION_MS (default 20000),
 * SIM_CONTROL=1 (mount the /_sim control routes), SIM_SEED, SIM_LOG=1,
 * SIM_KEEP_ALIVE_MS (start a demo task this often while requests come in; default off).
 */
import { createSimulator, SEED_TASK_IDS, type SimulatorOptions } from './index.js'

function intEnv (name: string, fallback: number | undefined): number | undefined {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0) throw new TypeError(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`)
  return n
}

async function main (): Promise<void> {
  const port = intEnv('SIM_PORT', 4000) as number
  const host = process.env.SIM_HOST?.trim() || '127.0.0.1'
  const keys = process.env.SIM_KEYS?.split(',').map((k) => k.trim()).filter((k) => k !== '')
  const opts: SimulatorOptions = {
    controlRoute: process.env.SIM_CONTROL === '1' || process.env.SIM_CONTROL === 'true',
    logger: process.env.SIM_LOG === '1'
  }
  if (keys !== undefined && keys.length > 0) opts.keys = keys
  const duration = intEnv('SIM_DURATION_MS', undefined)
  if (duration !== undefined) opts.durationMs = duration
  const seed = intEnv('SIM_SEED', undefined)
  if (seed !== undefined) opts.seed = seed
  const keepAlive = intEnv('SIM_KEEP_ALIVE_MS', undefined)
  if (keepAlive !== undefined && keepAlive > 0) opts.keepAlive = { everyMs: keepAlive }

  const sim = await createSimulator(opts)
  const url = await sim.listen({ port, host })
  const key = sim.defaultKey
  const lines = [
    `CometAPI Midjourney simulator listening on ${url}`,
    `API key${sim.keys.length > 1 ? 's' : ''}: ${sim.keys.join(', ')} (seeded tasks belong to ${key})`,
    `Task duration: ${sim.options.durationMs} ms; control routes: ${sim.options.controlRoute ? `${url}/_sim/*` : 'off (SIM_CONTROL=1)'}`,
    `Keep-alive: ${sim.options.keepAlive === null ? 'off (SIM_KEEP_ALIVE_MS)' : `a new task every ${sim.options.keepAlive.everyMs} ms while requests come in`}`,
    'Seeded task ids:',
    ...Object.entries(SEED_TASK_IDS).map(([name, id]) => `  ${name.padEnd(11)} ${id}`),
    'Try:',
    `  curl -s ${url}/mj/task/list-by-condition -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" -d '{"ids":["${SEED_TASK_IDS.inProgress}","${SEED_TASK_IDS.success}"]}'`,
    `  curl -s ${url}/mj/submit/imagine -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" -d '{"prompt":"a red fox in the snow"}'`,
    `  open ${url}/mj/image/${SEED_TASK_IDS.success}`
  ]
  process.stdout.write(lines.join('\n') + '\n')

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    process.stdout.write(`\n${signal} received, closing simulator\n`)
    sim.close().then(() => process.exit(0), (err: unknown) => {
      process.stderr.write(`error while closing: ${String(err)}\n`)
      process.exit(1)
    })
  }
  process.once('SIGINT', () => { stop('SIGINT') })
  process.once('SIGTERM', () => { stop('SIGTERM') })
}

main().catch((err: unknown) => {
  process.stderr.write(`simulator failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
