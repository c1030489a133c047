import fp from 'fastify-plugin'
import { Transform, pipeline, type Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import type { FastifyInstance, FastifyRequest } from 'fastify'

/** A Host header as RFC 9110 allows it: a DNS name, an IPv4 or a bracketed IPv6 literal, and a port. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/

/**
 * The origin the client reached the gateway at, from its Host header and the
 * request's protocol, or undefined when the header is not a plain host[:port]
 * (it then cannot put anything else into a link).
 */
export function clientOrigin (request: Pick<FastifyRequest, 'host' | 'protocol'>): string | undefined {
  const host = request.host
  if (typeof host !== 'string' || host.length > 261 || !HOST.test(host)) return undefined
  if (request.protocol !== 'http' && request.protocol !== 'https') return undefined
  return `${request.protocol}://${host.toLowerCase()}`
}

/** Rewrites whole SSE frames (each ends with a blank line), so a link split across two chunks is still found. */
function frameRewriter (rewrite: (text: string) => string): Transform {
  const decoder = new StringDecoder('utf8')
  let rest = ''
  return new Transform({
    transform (chunk: Buffer | string, _encoding, done) {
      const text = rest + (typeof chunk === 'string' ? chunk : decoder.write(chunk))
      const end = text.lastIndexOf('\n\n') + 2
      rest = text.slice(end)
      done(null, end > 1 ? rewrite(text.slice(0, end)) : undefined)
    },
    flush (done) {
      rest += decoder.end()
      done(null, rest === '' ? undefined : rewrite(rest))
    }
  })
}

/**
 * Demo mode only: the embedded simulator's image links
 * (`<imageBase>/mj/image/:id`, served by the gateway's image relay) go out
 * with the address the client used, so they work whether the page was opened
 * as 127.0.0.1, localhost or a container's published port. Only JSON answers
 * and SSE streams are rewritten, and only that exact prefix; WebSocket
 * subscribers see `imageBase` itself.
 */
export const demoLinks = fp<{ imageBase: string }>(async function demoLinks (app: FastifyInstance, { imageBase }) {
  const from = `${imageBase}/mj/image/`
  app.addHook('onSend', async (request, reply, payload) => {
    const type = reply.getHeader('content-type')
    if (typeof type !== 'string') return payload
    const json = /^application\/(?:[\w.+-]+\+)?json\b/.test(type)
    const sse = type.startsWith('text/event-stream')
    if (!json && !sse) return payload
    const origin = clientOrigin(request)
    if (origin === undefined) return payload
    const to = `${origin}/mj/image/`
    if (to === from) return payload
    const rewrite = (text: string): string => text.replaceAll(from, to)
    if (json && typeof payload === 'string') return rewrite(payload)
    if (sse && payload !== null && typeof (payload as Readable).pipe === 'function') {
      // The route keeps writing to its own stream; closing either side closes both.
      return pipeline(payload as Readable, frameRewriter(rewrite), () => {})
    }
    return payload
  })
}, { name: 'demo-links' })
