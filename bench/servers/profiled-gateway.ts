import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { createInterface } from 'node:readline'
import { buildApp } from '../../src/app.js'

/**
 * The gateway for bench/profile.ts. It prints its URL, then obeys lines on
 * stdin: `start` starts V8's sampling profiler, `stop <file>` writes the
 * profile there, so start-up and warm-up stay out of it.
 */
const app = await buildApp({ upstream: { baseUrl: process.env.BENCH_UPSTREAM, key: 'sk-bench-profile' } }, { logger: false })
const url = await app.listen({ port: 0, host: '127.0.0.1' })
const session = new Session()
session.connect()
await session.post('Profiler.enable')
await session.post('Profiler.setSamplingInterval', { interval: 100 })
console.log(url)
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'start') {
    await session.post('Profiler.start')
    console.log('started')
  } else if (line.startsWith('stop ')) {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(line.slice(5), JSON.stringify(profile))
    console.log('stopped')
    break
  }
}
await app.close()
