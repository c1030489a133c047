/**
 * The child side of the bench's process protocol. Each system under test runs
 * alone in its own process so that `process.cpuUsage()` is its CPU and
 * nobody else's; the bench asks for it over IPC before and after a phase.
 */

export type Handler = (args: any) => unknown

interface Request { id: number, cmd: string, args?: unknown }

/** Starts answering the bench's requests, then tells it where we listen. */
export function serve (url: string, handlers: Record<string, Handler>, close: () => Promise<void>): void {
  let peakRss = 0
  let sampler: NodeJS.Timeout | undefined
  const sample = (): void => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }
  const builtins: Record<string, Handler> = {
    cpu: () => process.cpuUsage(),
    // maxRSS is the kernel's high-water mark (KiB); the sampler catches the peak of one phase.
    memory: () => ({ rss: process.memoryUsage.rss(), maxRss: process.resourceUsage().maxRSS * 1024, heapUsed: process.memoryUsage().heapUsed, peakRss }),
    sampleStart: () => {
      peakRss = process.memoryUsage.rss()
      clearInterval(sampler)
      sampler = setInterval(sample, 20)
    },
    sampleStop: () => {
      clearInterval(sampler)
      sample()
      return peakRss
    },
    close: async () => {
      clearInterval(sampler)
      await close()
      setImmediate(() => process.exit(0))
    }
  }
  process.on('message', (msg: Request) => {
    const handler = handlers[msg.cmd] ?? builtins[msg.cmd]
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown command ${msg.cmd}`)
        return handler(msg.args)
      })
      .then(
        (result) => process.send!({ id: msg.id, result: result ?? null }),
        (err: Error) => process.send!({ id: msg.id, error: err.message })
      )
  })
  // The bench went away (crash, Ctrl-C): never outlive it.
  process.on('disconnect', () => process.exit(0))
  process.send!({ ready: true, url })
}

/** Arguments the bench passed in the environment. */
export function childArgs<T> (): T {
  return JSON.parse(process.env.BENCH_ARGS ?? '{}') as T
}
