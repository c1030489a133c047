import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { checkId } from '../core/ids.js'
import { checkIdempotencyKey } from '../core/idempotency.js'
import { submitBodyLimitBytes } from '../config.js'

const SUBMIT_ACTION = /^[a-z][a-z0-9_-]{0,39}$/
const IMAGE_HEADERS = ['content-type', 'content-length', 'cache-control', 'etag', 'last-modified', 'retry-after']

/**
 * The rest of the upstream API, relayed through the task loader so a
 * CometAPI client can switch its whole base URL to the gateway: submits and
 * images go through unchanged, with the gateway's (or the tenant's)
 * credential. Upstream's answers come back as they are (a 429 with its
 * `Retry-After`); upstream failing (5xx, no answer) is the gateway's coded
 * 502/503/504, as on the lookup routes.
 *
 * A submit may carry `Idempotency-Key` (src/core/idempotency.ts): a repeat
 * gets the first answer's status and body again, with `Idempotent-Replayed: true`.
 * Only answers upstream delivered (2xx, 4xx but 408 and 429) are kept; after
 * a 5xx, a timeout or no answer the key is released, so a retry goes upstream again.
 */
export default async function passthroughRoutes (app: FastifyInstance): Promise<void> {
  const { loader, config } = app.gateway
  const { identify } = app.security

  // Submits carry base64 images (describe, blend, imagine's base64Array): a bound of their own, SUBMIT_BODY_LIMIT_BYTES.
  app.post<{ Params: { action: string }, Body: unknown }>('/mj/submit/:action', {
    bodyLimit: submitBodyLimitBytes(config)
  }, async function (request, reply) {
    const { action } = request.params
    if (!SUBMIT_ACTION.test(action)) throw new errors.BadRequest(`Unknown submit action ${JSON.stringify(action)}`)
    const idempotencyKey = checkIdempotencyKey(request.headers['idempotency-key'])
    const { statusCode, body, retryAfter, replayed } = await loader.submit(action, request.body, request.scope, { idempotencyKey, client: identify(request) })
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
    if (replayed) reply.header('idempotent-replayed', 'true')
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
