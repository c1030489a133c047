/** One SSE frame: an event (with its id and data) or a comment. */
export interface Frame { event?: string, id?: string, data?: string, comment?: string }

/** An SSE response read frame by frame, over a real socket (fetch). */
export class SseReader {
  readonly frames: Frame[] = []
  ended = false
  readonly #controller = new AbortController()
  response!: Response

  static async open (url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const reader = new SseReader()
    reader.response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: reader.#controller.signal })
    if (reader.response.ok) void reader.#pump()
    return reader
  }

  get events (): Frame[] { return this.frames.filter((f) => f.event !== undefined) }
  get tasks (): Array<{ id: string, status: string, progress: string, imageUrl: string }> {
    return this.events.filter((f) => f.event === 'task').map((f) => JSON.parse(f.data!))
  }

  get lastId (): string | undefined { return this.events.filter((f) => f.id !== undefined).at(-1)?.id }

  async #pump (): Promise<void> {
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of this.response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const frame: Frame = {}
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) frame.comment = line.slice(1).trim()
            else {
              const colon = line.indexOf(':')
              const field = line.slice(0, colon) as 'event' | 'id' | 'data'
              frame[field] = line.slice(colon + 1).replace(/^ /, '')
            }
          }
          this.frames.push(frame)
        }
      }
    } catch {}
    this.ended = true
  }

  abort (): void { this.#controller.abort() }
}
