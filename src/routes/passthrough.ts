import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { checkId } from '../ids.js'

/** Submit codes that mean a task was created (NOTES.md: 1 success, 21 exists, 22 queued). */
const CREATED = new Set([1, 21, 22])
const SUBMIT_ACTION = /^[a-z][a-z0-9_-]{0,39}$/

/**
 * The rest of the upstream API, relayed so a CometAPI client can switch its
 * whole base URL to the gateway: submits and images go through unchanged,
 * with the gateway's (or the tenant's) credential. Submits are not reads, so
 * they are neither batched nor retried; a successful submit drops any
 * remembered "unknown" for the new id so the next lookup asks upstream.
 */
export default async function passthroughRoutes (app: FastifyInstance): Promise<void> {
  const { upstream, loader, config } = app.gateway

  app.post<{ Params: { action: string }, Body: unknown }>('/mj/submit/:action', async function (request, reply) {
    const { action } = request.params
    if (!SUBMIT_ACTION.test(action)) throw new errors.BadRequest(`Unknown submit action ${JSON.stringify(action)}`)
    const scope = request.scope
    const res = await upstream.forward({
      method: 'POST',
      path: `/mj/submit/${action}`,
      body: JSON.stringify(request.body ?? {}),
      credential: scope.credential
    })
    const text = await res.body.text()
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      throw new errors.UpstreamBadResponse(`submit answered HTTP ${res.statusCode} with a non-JSON body`)
    }
    const result = body as { code?: unknown, result?: unknown }
    if (CREATED.has(result.code as number) && typeof result.result === 'string') loader.forget(result.result, scope)
    return reply.code(res.statusCode).send(body)
  })

  app.get<{ Params: { id: string } }>('/mj/image/:id', async function (request, reply) {
    const id = checkId(request.params.id, config.limits)
    const res = await upstream.forward({ method: 'GET', path: `/mj/image/${id}`, credential: request.scope.credential, accept: 'image/*' })
    for (const name of ['content-type', 'content-length', 'cache-control', 'etag', 'last-modified']) {
      const value = res.headers[name]
      if (value !== undefined) reply.header(name, value)
    }
    return reply.code(res.statusCode).send(res.body)
  })
}
