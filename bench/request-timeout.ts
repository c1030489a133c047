/**
 * When does the gateway really cut a request that never finishes arriving?
 * Node checks its deadlines only every `connectionsCheckingInterval`, so the
 * cut comes some time after REQUEST_TIMEOUT_MS; this measures it on a real
 * port. Tests never assert timings: this script is where they are measured.
 *
 *   npx tsx bench/request-timeout.ts                        the defaults (about 30 s)
 *   npx tsx bench/request-timeout.ts --timeout-ms 2000      any REQUEST_TIMEOUT_MS
 *   npx tsx bench/request-timeout.ts --give-up-ms 120000    stop waiting after this long
 *
 * Three connections at once: one that sends nothing, one whose headers never
 * end, one whose body stops after 10 of its 100 declared bytes. Each prints
 * when the server answered and closed it, and with what status.
 */
import { connect } from 'node:net'
import { parseArgs } from 'node:util'
import { buildApp } from '../src/app.js'

const { values } = parseArgs({ options: { 'timeout-ms': { type: 'string' }, 'give-up-ms': { type: 'string', default: '120000' } } })
const timeoutMs = values['timeout-ms'] === undefined ? undefined : Number(values['timeout-ms'])
const giveUpMs = Number(values['give-up-ms'])

const app = await buildApp({ upstream: { baseUrl: 'http://127.0.0.1:9', key: 'unused' }, limits: timeoutMs === undefined ? {} : { requestTimeoutMs: timeoutMs } }, { logger: false })
const base = await app.listen({ port: 0, host: '127.0.0.1' })
const port = Number(new URL(base).port)
const configured = app.gateway.config.limits.requestTimeoutMs
// Not in @types/node 20, but set by Node from the server options.
const checking = (app.server as typeof app.server & { connectionsCheckingInterval?: number }).connectionsCheckingInterval
console.log(`REQUEST_TIMEOUT_MS=${configured}; Node checks every ${checking ?? '?'} ms, headersTimeout ${app.server.headersTimeout} ms, requestTimeout ${app.server.requestTimeout} ms`)

const cases: Record<string, string> = {
  'sends nothing': '',
  'headers never end': 'GET /v1/tasks/1 HTTP/1.1\r\nHost: gw\r\nX-Slow: 1',
  'body stops at 10 of 100 bytes': 'POST /v1/tasks HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ids": [1'
}

const started = performance.now()
const results = await Promise.all(Object.entries(cases).map(([name, bytes]) => new Promise<string>((resolve) => {
  const socket = connect(port, '127.0.0.1')
  let first = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { first ||= chunk.split('\r\n')[0]! })
  socket.on('error', () => {})
  const giveUp = setTimeout(() => { socket.destroy(); resolve(`${name}: still open after ${giveUpMs} ms`) }, giveUpMs)
  socket.on('close', () => {
    clearTimeout(giveUp)
    resolve(`${name}: closed after ${Math.round(performance.now() - started)} ms, ${first === '' ? 'no answer' : first}`)
  })
  socket.write(bytes)
})))
for (const line of results) console.log(line)
await app.close()
