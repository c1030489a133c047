import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SCENARIOS = ['cache-hit-rest', 'cache-hit-graphql', 'cache-hit-rest-list', 'cache-hit-graphql-list', 'repeated-operation', 'burst', 'lone', 'load-calls', 'load-throughput', 'memory', 'replicas-calls', 'replicas-fetches', 'replicas-p99', 'replicas-l2-hit']

// The smoke mode only: this checks the report is well formed, never how fast anything was.
t.test('npm run bench -- --quick writes a well-formed report', async (t) => {
  t.setTimeout(120_000)
  const out = t.testdir({}) + '/report.json'
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--json-out', out], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 0, 'exits 0 even when a target is missed', { stderr })

  const report = JSON.parse(readFileSync(out, 'utf8'))
  t.equal(report.schema, 1)
  t.equal(report.quick, true)
  t.type(report.command, 'string')
  t.type(report.allMet, 'boolean')
  t.same(report.scenarios.map((s: { id: string }) => s.id), SCENARIOS, 'every scenario, in order')
  for (const s of report.scenarios) {
    t.type(s.title, 'string', `${s.id} title`)
    t.type(s.unit, 'string', `${s.id} unit`)
    t.ok(s.baseline === null || Number.isFinite(s.baseline), `${s.id} baseline is a number or null`)
    t.ok(Number.isFinite(s.gateway), `${s.id} gateway is a number`)
    t.ok(Number.isFinite(s.value), `${s.id} value is a number`)
    t.ok(Array.isArray(s.rounds) && s.rounds.length > 0, `${s.id} has rounds`)
    t.equal(s.targets.length, 1, `${s.id} has its target`)
    for (const target of s.targets) {
      t.type(target.met, 'boolean', `${s.id} ${target.metric}: met`)
      t.ok(Number.isFinite(target.value) && Number.isFinite(target.threshold), `${s.id} ${target.metric}: numbers`)
      t.ok(target.op === '>=' || target.op === '<=', `${s.id} ${target.metric}: op`)
    }
  }
  t.equal(report.allMet, report.scenarios.every((s: { targets: Array<{ met: boolean }> }) => s.targets.every((x) => x.met)))
  for (const id of SCENARIOS) t.match(stdout, new RegExp(`^\\| ${id} `, 'm'), `the table has a ${id} row`)
})
