/**
 * Applying faults to one API request: how long to delay it, what the call
 * log records, and the reply a terminal fault sends instead of the handler.
 * Which faults are active and which of them match is faults.ts's job.
 */
import type { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UpstreamErrorBody } from '../upstream/types.js'
import type { FaultKind, TerminalFault } from './faults.js'

/** The faults taken for one request, as applied. */
export interface AppliedFaults {
  /** Total delay: the configured latency plus every matching latency fault. */
  readonly delayMs: number
  /** What the call log shows: the terminal fault, else 'latency' if a fault added delay. */
  readonly fault: FaultKind | null
  readonly terminal: TerminalFault | null
}

/** Combine the configured latency with what `FaultController.take` returned. */
export function appliedFaults (baseLatencyMs: number, taken: { latencyMs: number, terminal: TerminalFault | null }): AppliedFaults {
  return {
    delayMs: baseLatencyMs + taken.latencyMs,
    fault: taken.terminal?.kind ?? (taken.latencyMs > 0 ? 'latency' : null),
    terminal: taken.terminal
  }
}

/**
 * Sockets of hung requests. server.close() would wait for them forever, so
 * closing destroys them, and a request that hangs after that is dropped at once.
 */
export class HungSockets {
  readonly #sockets = new Set<Socket>()
  #closed = false

  hold (socket: Socket): void {
    if (this.#closed) {
      socket.destroy()
      return
    }
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
  }

  destroyAll (): void {
    this.#closed = true
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
  }
}

const NGINX_502 = '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>'

/** Answer `request` as `fault` says, in place of the route's handler. */
export function applyFault (fault: TerminalFault, request: FastifyRequest, reply: FastifyReply, hung: HungSockets): FastifyReply {
  switch (fault.kind) {
    case 'error':
      return reply.code(fault.status).send({ description: fault.description, type: 'upstream_error', code: fault.code } satisfies UpstreamErrorBody)
    case 'rate-limit':
      // new-api answers a saturated group with code 30 and HTTP 429.
      return reply.code(429).header('retry-after', String(fault.retryAfterSeconds))
        .send({ description: 'rate_limited Current group load is saturated, please try again later', type: 'upstream_error', code: 30 } satisfies UpstreamErrorBody)
    case 'hang':
      // Take the socket away from Fastify and never answer.
      reply.hijack()
      hung.hold(request.raw.socket)
      return reply
    case 'malformed':
      reply.code(fault.status)
      switch (fault.body) {
        case 'text': return reply.type('text/plain; charset=utf-8').send('upstream temporarily unavailable')
        case 'html': return reply.type('text/html; charset=utf-8').send(NGINX_502)
        case 'object': return reply.type('application/json').send('{"data":[],"message":"ok"}')
        case 'truncated': return reply.type('application/json').send('[{"id":"1700000000000101","status":"SUCC')
        case 'empty': return reply.type('application/json').send('')
      }
  }
}
