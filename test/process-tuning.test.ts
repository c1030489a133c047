import t from 'tap'
import { readFileSync } from 'node:fs'
import { configFromEnv, normalizeConfig } from '../src/config.js'
import { missingNodeFlags, NODE_FLAGS, tuneProcess } from '../src/process-tuning.js'
import { FakeUpstream } from './helpers/fake-upstream.js'
import { startServer } from './helpers/server.js'

t.test('MEMORY_HEAP_GROWTH_PERCENT: 10 by default, set once at start, and 0 leaves V8 its own growth', async (t) => {
  t.equal(normalizeConfig().memory.heapGrowthPercent, 10)
  t.strictSame(configFromEnv({ MEMORY_HEAP_GROWTH_PERCENT: '0' }), { memory: { heapGrowthPercent: 0 } })
  t.throws(() => configFromEnv({ MEMORY_HEAP_GROWTH_PERCENT: '-1' }), /MEMORY_HEAP_GROWTH_PERCENT/)
  const flags: string[] = []
  tuneProcess(normalizeConfig(), (f) => flags.push(f))
  tuneProcess(normalizeConfig({ memory: { heapGrowthPercent: 25 } }), (f) => flags.push(f))
  tuneProcess(normalizeConfig({ memory: { heapGrowthPercent: 0 } }), (f) => flags.push(f))
  t.strictSame(flags, ['--heap-growing-percent=10', '--heap-growing-percent=25'])
})

t.test('npm start and npm run dev pass the start-up flags', async (t) => {
  const { scripts } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }
  t.equal(scripts.start, `node ${NODE_FLAGS.join(' ')} dist/server.js`)
  t.equal(scripts.dev, `tsx ${NODE_FLAGS.join(' ')} src/server.ts`)
})

t.test('a flag counts as given on the command line or in NODE_OPTIONS', async (t) => {
  t.strictSame(missingNodeFlags([], ''), [...NODE_FLAGS])
  t.strictSame(missingNodeFlags([...NODE_FLAGS], ''), [])
  t.strictSame(missingNodeFlags(['--inspect'], `--enable-source-maps ${NODE_FLAGS.join(' ')}`), [])
})

t.test('a server started without the flags says which are missing, once; with them it says nothing', async (t) => {
  const upstream = await FakeUpstream.start()
  t.teardown(() => upstream.close())
  const env = { COMETAPI_BASE_URL: upstream.url, COMETAPI_KEY: 'sk-x', LOG_LEVEL: 'info' }
  const warningsOf = (logs: string[]): Array<{ level: number, missing: string[] }> =>
    logs.filter((line) => line.includes('tuned for')).map((line) => JSON.parse(line) as { level: number, missing: string[] })
  const bare = await startServer(t, env, [])
  const warnings = warningsOf(bare.logs)
  t.equal(warnings.length, 1)
  t.equal(warnings[0]!.level, 40)
  t.strictSame(warnings[0]!.missing, [...NODE_FLAGS])
  t.strictSame(warningsOf((await startServer(t, env)).logs), [])
})
