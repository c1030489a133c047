import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { checkId } from '../core/ids.js'

const SUBMIT_ACTION = /^[a-z][a-z0-9_-]{0,39}$/
const IMAGE_HEADERS = ['content-type', 'content-length', 'cache-control', 'etag', 'last-modified']

/**
 * The rest of the upstream API, relayed through the task loader so a
 * CometAPI client can switch its whole base URL to the gateway: submits and
 * images go through unchanged, with the gateway's (or the tenant's)
 * credential. Upstream's status and body come back as they are.
 */
export default async function passthroughRoutes (app: FastifyInstance): Promise<void> {
  const { loader, config } = app.gateway

  // Submits carry base64 images (describe, blend, imagine's base64Array): a bound of their own, SUBMIT_BODY_LIMIT_BYTES.
  app.post<{ Params: { action: string }, Body: unknown }>('/mj/submit/:action', { bodyLimit: config.limits.submitBodyLimitBytes }, async function (request, reply) {
    const { action } = request.params
    if (!SUBMIT_ACTION.test(action)) throw new errors.BadRequest(`Unknown submit action ${JSON.stringify(action)}`)
    const { statusCode, body } = await loader.submit(action, request.body, request.scope)
    return reply.code(statusCode).send(body)
  })

  app.get<{ Params: { id: string } }>('/mj/image/:id', async function (request, reply) {
    const id = checkId(request.params.id, config.limits)
    const res = await loader.image(id, request.scope)
    for (const name of IMAGE_HEADERS) {
      const value = res.headers[name]
      if (value !== undefined) reply.header(name, value)
    }
    return reply.code(res.statusCode).send(res.body)
  })
}
