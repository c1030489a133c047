import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { freePort } from './server.js'

/** What a machine without redis-server needs; the Redis tests fail with it rather than skip. */
export const REDIS_INSTALL = 'apt-get update && apt-get install -y redis-server'

export interface RedisServer {
  readonly url: string
  readonly port: number
  /** SIGKILL: what a crashed Redis looks like to its clients. */
  kill (): Promise<void>
  /** Starts it again on the same port, empty. */
  restart (): Promise<void>
  /** SIGSTOP: a Redis that hangs (connections open, nothing answered) until `resume()`. */
  pause (): void
  resume (): void
  stop (): Promise<void>
}

function redisServerPath (): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server || command -v valkey-server'], { encoding: 'utf8' })
  const path = found.stdout.trim().split('\n')[0]
  if (found.status !== 0 || path === undefined || path === '') {
    throw new Error(`redis-server is not on the PATH; the Redis tests need it. Install it with: ${REDIS_INSTALL}`)
  }
  return path
}

/** A certificate and key (PEM files) for a TLS-only server. */
export interface RedisTls { certFile: string, keyFile: string }

function launch (binary: string, port: number, dir: string, tls: RedisTls | undefined): Promise<ChildProcess> {
  const listen = tls === undefined
    ? ['--port', String(port)]
    : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-auth-clients', 'no']
  const child = spawn(binary, [
    ...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--protected-mode', 'yes', '--loglevel', 'notice'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output: string[] = []
  child.stderr!.on('data', (chunk) => output.push(String(chunk)))
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      output.push(line)
      if (line.includes('Ready to accept connections')) resolve(child)
    })
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output.join('\n')}`)))
  })
}

async function stopChild (child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill(signal)
  await exited
}

/**
 * A private redis-server on a free loopback port, nothing persisted, stopped
 * at teardown. Never a shared or fixed port: parallel test files each get their own.
 * With `tls`, it speaks TLS only, and `url` is a rediss:// one.
 */
export async function startRedis (t: { teardown: (fn: () => unknown) => void }, options: { tls?: RedisTls } = {}): Promise<RedisServer> {
  const binary = redisServerPath()
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'mj-gateway-redis-'))
  const { tls } = options
  let child: ChildProcess | undefined = await launch(binary, port, dir, tls)
  const server: RedisServer = {
    url: `${tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    port,
    kill: async () => { await stopChild(child, 'SIGKILL'); child = undefined },
    restart: async () => {
      await stopChild(child, 'SIGKILL')
      child = await launch(binary, port, dir, tls)
    },
    stop: async () => {
      child?.kill('SIGCONT')
      await stopChild(child, 'SIGTERM')
      child = undefined
    },
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') }
  }
  t.teardown(async () => {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return server
}

/**
 * A self-signed certificate for 127.0.0.1, made with openssl into `dir`
 * (`.ci/run` installs openssl when it is missing).
 */
export function selfSignedCert (dir: string): RedisTls {
  const certFile = join(dir, 'redis-cert.pem')
  const keyFile = join(dir, 'redis-key.pem')
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' })
  if (made.error !== undefined || made.status !== 0) {
    throw new Error(`openssl could not make a test certificate (${made.error?.message ?? made.stderr}). Install it with: apt-get update && apt-get install -y openssl`)
  }
  return { certFile, keyFile }
}
