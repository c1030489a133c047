/**
 * The bench's side of the process protocol (servers/child.ts is the other).
 * Each system under test runs alone in its own process so that the CPU it
 * reports is its own; the bench starts it, asks it for its CPU accounting
 * over IPC around a phase, and stops it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import type { GatewayOptions } from '../src/config.js'
import { NODE_FLAGS } from '../src/process-tuning.js'
import { BASELINES } from './report.js'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const BENCH_KEY = 'sk-bench-key'

/** Progress goes to stderr, so stdout carries only the table. */
export function log (line: string): void {
  process.stderr.write(line + '\n')
}

interface CpuUsage { user: number, system: number }

/** One system under test in its own process, driven over IPC. */
export class Child {
  static readonly all = new Set<Child>()
  #seq = 0
  readonly #pending = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()

  private constructor (readonly name: string, readonly proc: ChildProcess, readonly url: string) {
    proc.on('message', (msg: { id?: number, result?: unknown, error?: string }) => {
      const p = msg.id === undefined ? undefined : this.#pending.get(msg.id)
      if (p === undefined) return
      this.#pending.delete(msg.id!)
      if (msg.error !== undefined) p.reject(new Error(`${name}: ${msg.error}`))
      else p.resolve(msg.result)
    })
    proc.on('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`${name} exited (${code})`))
      this.#pending.clear()
    })
  }

  /** `nodeFlags`: Node's command-line flags; gateways get the ones `npm start` passes. */
  static start (name: string, file: string, args: object = {}, nodeFlags: readonly string[] = []): Promise<Child> {
    const proc = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', join(ROOT, 'bench/servers', file)], {
      cwd: ROOT,
      env: { ...process.env, BENCH_ARGS: JSON.stringify(args) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`${name} did not start within 30 s`)) }, 30_000)
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited during start-up (${code})`)) })
      proc.once('message', (msg: { ready?: boolean, url?: string }) => {
        clearTimeout(timer)
        if (msg.ready !== true || msg.url === undefined) { reject(new Error(`${name}: unexpected first message`)); return }
        proc.removeAllListeners('exit')
        const child = new Child(name, proc, msg.url)
        Child.all.add(child)
        resolve(child)
      })
    })
  }

  call<T = unknown> (cmd: string, args?: unknown): Promise<T> {
    const id = ++this.#seq
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      this.proc.send({ id, cmd, args })
    })
  }

  /** CPU (user + system, µs) the process spent while `fn` ran. */
  async cpuDuring<T> (fn: () => Promise<T>): Promise<{ cpuUs: number, result: T }> {
    const before = await this.call<CpuUsage>('cpu')
    const result = await fn()
    const after = await this.call<CpuUsage>('cpu')
    return { cpuUs: after.user - before.user + after.system - before.system, result }
  }

  async close (): Promise<void> {
    Child.all.delete(this)
    if (this.proc.exitCode !== null) return
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()))
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000)
    this.call('close').catch(() => {})
    await exited
    clearTimeout(timer)
  }
}

/**
 * A redis-server (or valkey-server) of the bench's own, on a free loopback
 * port, nothing persisted; stopped with the other processes, killed by the
 * watchdog.
 */
export class RedisProcess {
  static readonly all = new Set<RedisProcess>()

  private constructor (readonly proc: ChildProcess, readonly url: string, readonly dir: string) {}

  static async start (): Promise<RedisProcess> {
    const found = spawnSync('sh', ['-c', 'command -v redis-server || command -v valkey-server'], { encoding: 'utf8' })
    const binary = found.stdout.trim().split('\n')[0]
    if (found.status !== 0 || binary === undefined || binary === '') {
      throw new Error('redis-server is not on the PATH; the replicas scenario needs it. Install it with: apt-get update && apt-get install -y redis-server')
    }
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number }
        server.close(() => resolve(port))
      })
    })
    const dir = mkdtempSync(join(tmpdir(), 'mj-bench-redis-'))
    const proc = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('redis-server did not start within 10 s')) }, 10_000)
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        if (line.includes('Ready to accept connections')) { clearTimeout(timer); resolve() }
      })
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited during start-up (${code})`)) })
    })
    proc.stdout!.resume()
    const redis = new RedisProcess(proc, `redis://127.0.0.1:${port}`, dir)
    RedisProcess.all.add(redis)
    return redis
  }

  async stop (): Promise<void> {
    RedisProcess.all.delete(this)
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((resolve) => this.proc.once('exit', resolve))
      this.proc.kill('SIGTERM')
      await exited
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Every process a scenario may drive; a scenario that needs a fresh one starts its own. */
export interface Servers {
  upstream: Child
  gateway: Child
  loadGateway: Child
  memoryGateway: Child
  rest: Child
  graphql: Child
  /** What `gateway` was started with, for scenarios that start gateways of their own. */
  gatewayOptions: GatewayOptions
}

/**
 * Starts the upstream, then every gateway and anchor against it. The gateway
 * options can only be settled once the upstream's port is known.
 */
export async function startServers (configure: (upstreamUrl: string) => GatewayOptions): Promise<{ servers: Servers, gatewayOptions: GatewayOptions }> {
  const upstream = await Child.start('upstream', 'upstream.ts')
  const gatewayOptions = configure(upstream.url)
  const [gateway, loadGateway, memoryGateway, rest, graphql] = await Promise.all([
    Child.start('gateway', 'gateway.ts', gatewayOptions, NODE_FLAGS),
    Child.start('gateway (cache off)', 'gateway.ts', { ...gatewayOptions, cache: { ttlMs: 0 } }, NODE_FLAGS),
    Child.start('gateway (memory)', 'gateway.ts', gatewayOptions, NODE_FLAGS),
    Child.start(BASELINES.rest, 'rest-baseline.ts'),
    Child.start(BASELINES.graphql, 'graphql-baseline.ts')
  ])
  return { servers: { upstream, gateway, loadGateway, memoryGateway, rest, graphql, gatewayOptions }, gatewayOptions }
}

/** Stops every process still running, politely, killing those that don't go in 5 s. */
export async function stopAll (): Promise<void> {
  await Promise.allSettled([...Child.all].map((child) => child.close()))
  await Promise.allSettled([...RedisProcess.all].map((redis) => redis.stop()))
}

/** For the watchdog: no politeness, the run is already wedged. */
export function killAll (): void {
  for (const child of Child.all) child.proc.kill('SIGKILL')
  for (const redis of RedisProcess.all) redis.proc.kill('SIGKILL')
}

export async function cannon (opts: autocannon.Options): Promise<autocannon.Result> {
  return await autocannon({ connections: 10, pipelining: 1, timeout: 10, ...opts })
}

/** A phase with any failed request measured something else than intended: stop the run. */
export function checkClean (what: string, r: autocannon.Result): void {
  if (r.errors > 0 || r.non2xx > 0 || r['2xx'] === 0) {
    throw new Error(`${what}: ${r['2xx']} ok, ${r.non2xx} non-2xx, ${r.errors} errors`)
  }
}
