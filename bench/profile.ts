/**
 * `npm run bench:profile -- [rest|graphql] [seconds]`: where a cache hit's CPU
 * goes. The gateway runs in a child process whose V8 sampling profiler (what
 * `--cpu-prof` uses) runs only while autocannon drives cache hits, after a
 * warm-up; a stand-in upstream and autocannon run here. Prints the top
 * functions by self time, as shares of the busy samples (idle left out), so a
 * loaded machine changes the totals but hardly the ranking.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import { HIT_ID, HIT_QUERY, makeTask } from './fixtures.js'
import { ROOT } from './harness.js'
import { NODE_FLAGS } from '../src/process-tuning.js'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
interface Profile { nodes: ProfileNode[], samples: number[] }

const surface = process.argv[2] === 'graphql' ? 'graphql' : 'rest'
const seconds = Number(process.argv[3] ?? 5)

const upstream = createServer((req, res) => {
  let body = ''
  req.on('data', (chunk: Buffer) => { body += chunk.toString() })
  req.on('end', () => {
    const ids = (JSON.parse(body) as { ids: string[] }).ids
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(ids.map(makeTask)))
  })
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

const dir = mkdtempSync(join(tmpdir(), 'mj-gateway-profile-'))
const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', join(ROOT, 'bench/servers/profiled-gateway.ts')], {
  env: { ...process.env, BENCH_UPSTREAM: upstreamUrl },
  stdio: ['pipe', 'pipe', 'inherit']
})
const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
const next = async (): Promise<string> => (await lines.next()).value as string
const url = await next()
const request = surface === 'rest'
  ? { url: `${url}/v1/tasks/${HIT_ID}` }
  : { url: `${url}/graphql`, method: 'POST' as const, body: HIT_QUERY, headers: { 'content-type': 'application/json' } }
// Warm-up fills the cache and lets V8 (and mercurius's JIT) compile the hot path.
await autocannon({ ...request, connections: 10, duration: 2 })
child.stdin!.write('start\n')
await next()
const result = await autocannon({ ...request, connections: 10, duration: seconds })
const file = join(dir, 'hit.cpuprofile')
child.stdin!.write(`stop ${file}\n`)
await next()
child.stdin!.end()
await new Promise((resolve) => child.once('exit', resolve))
upstream.close()
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
rmSync(dir, { recursive: true, force: true })

const byNode = new Map(profile.nodes.map((node) => [node.id, node]))
const selfSamples = new Map<string, number>()
for (const id of profile.samples) {
  const { functionName, url: where, lineNumber } = byNode.get(id)!.callFrame
  const place = where === '' ? '' : ` ${relative(ROOT, where.replace(/^file:\/\//, ''))}:${lineNumber + 1}`
  const key = `${functionName === '' ? '(anonymous)' : functionName}${place}`
  selfSamples.set(key, (selfSamples.get(key) ?? 0) + 1)
}
for (const idle of ['(idle)', '(program)']) selfSamples.delete(idle)
const total = [...selfSamples.values()].reduce((a, b) => a + b, 0)
const own = [...selfSamples].filter(([name]) => name.includes(' src/')).reduce((n, [, samples]) => n + samples, 0)
console.log(`${surface} cache hit, ${result.requests.total} requests in ${seconds} s, ${total} busy samples`)
console.log(`${(100 * own / total).toFixed(1).padStart(5)}%  in the gateway's own code (src/)`)
for (const [name, samples] of [...selfSamples].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
  console.log(`${(100 * samples / total).toFixed(1).padStart(5)}%  ${name}`)
}
