import type { Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { createInterface } from 'node:readline'
import { NODE_FLAGS } from '../../src/process-tuning.js'

export const SERVER = new URL('../../src/server.ts', import.meta.url).pathname

/**
 * Starts src/server.ts as `npm start` would (through tsx, with its Node
 * flags unless told otherwise), on 127.0.0.1 and a free port, with only `env`
 * and PATH set, and resolves its URL from the "Server listening" log line.
 * Killed at teardown if it is still running.
 */
export async function startServer (t: Test, env: Record<string, string>, nodeFlags: readonly string[] = NODE_FLAGS): Promise<{ child: ChildProcess, url: string, logs: string[] }> {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', SERVER], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const logs: string[] = []
  child.stderr!.on('data', (chunk) => logs.push(String(chunk)))
  const lines = createInterface({ input: child.stdout! })
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      logs.push(line)
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
      if (match !== null) resolve(match[1]!)
    })
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${logs.join('\n')}`)))
  })
  return { child, url, logs }
}

/** A loopback port nobody listens on right now, for a server this test starts itself. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
