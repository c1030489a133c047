import { errorCodes, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { isGatewayError } from '../errors.js'
import { checkId, checkIds } from '../core/ids.js'
import { sendError } from '../plugins/error-handler.js'
import type { UpstreamErrorBody } from '../upstream/types.js'
import { sendJsonText, tasksOrThrow } from '../http/respond.js'
import { whenLoaded } from '../core/task-loader.js'
import { joinTexts, type StoredTask } from '../core/stored-task.js'

/** Upstream's own row text: the drop-in routes answer exactly what upstream sent. */
const rawText = (task: StoredTask): string => task.raw

/** Sets 400 and returns upstream's own error body, so CometAPI clients parse our 400s as they parse its own. */
function upstreamError (reply: FastifyReply, description: string): UpstreamErrorBody {
  reply.code(400)
  return { description, type: 'upstream_error', code: 4 }
}

/**
 * Client mistakes get upstream's `{description, type, code}` body, as CometAPI
 * would answer them. Failures of the gateway or upstream itself have no
 * upstream equivalent and get the gateway's coded JSON error (502/503/504).
 */
function dropInErrorHandler (err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply | UpstreamErrorBody {
  if (isGatewayError(err) && err.statusCode >= 500) return sendError(reply, err)
  if (err.statusCode === 400 || err.validation !== undefined) {
    // upstream says "do_request_failed " for a body it cannot read; we add what was wrong.
    const unreadable = err instanceof errorCodes.FST_ERR_CTP_INVALID_JSON_BODY || err instanceof errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY
    const detail = unreadable ? '' : err.message
    return upstreamError(reply, detail === '' ? 'do_request_failed ' : `do_request_failed: ${detail}`)
  }
  throw err
}

/**
 * Copies of the upstream read routes, served through the same loader, so an
 * existing CometAPI client gets batching and caching by changing only its
 * base URL.
 */
export default async function dropInRoutes (app: FastifyInstance): Promise<void> {
  const { loader, config } = app.gateway
  const limits = config.limits

  app.post<{ Body: { ids?: unknown } | null }>('/mj/task/list-by-condition', {
    errorHandler: dropInErrorHandler
  }, async function (request, reply) {
    const raw = request.body?.ids
    // Upstream answers a missing or empty list with [] and reads no other field.
    if (raw === undefined || raw === null || (Array.isArray(raw) && raw.length === 0)) return []
    if (!Array.isArray(raw)) return upstreamError(reply, 'do_request_failed: ids must be an array of strings')
    const ids = [...new Set(checkIds(raw, limits))]
    const tasks = tasksOrThrow(reply, await loader.loadMany(ids, request.scope))
    return sendJsonText(reply, joinTexts(tasks.filter((task) => task !== null), rawText))
  })

  // Not async: existing clients poll this route, and a cache hit is answered without a promise.
  app.get<{ Params: { id: string } }>('/mj/task/:id/fetch', {
    errorHandler: dropInErrorHandler
  }, function (request, reply) {
    const id = checkId(request.params.id, limits)
    return whenLoaded(loader.load(id, request.scope), (lookup) => {
      const [task] = tasksOrThrow(reply, [lookup])
      // Note the trailing space: it is upstream's exact text.
      return task == null ? upstreamError(reply, 'task_no_found ') : sendJsonText(reply, task.raw)
    })
  })
}
