import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { checkId, checkIds, IDS_QUERYSTRING, queryIds, type IdsQuery } from '../core/ids.js'
import { sendJsonText, tasksOrThrow } from '../http/respond.js'
import { whenLoaded } from '../core/task-loader.js'
import { joinTexts, type StoredTask } from '../core/stored-task.js'

/** The REST shape, serialized once when the task arrived: `""` times are null, the cached row stays upstream's. */
const restText = (task: StoredTask): string => task.rest

/** The REST mirror of the GraphQL API: same loader, same data, JSON arrays in request order. */
export default async function taskRoutes (app: FastifyInstance): Promise<void> {
  const { loader, config } = app.gateway
  const limits = config.limits

  app.get<{ Querystring: { ids?: IdsQuery } }>('/v1/tasks', {
    schema: { querystring: IDS_QUERYSTRING }
  }, async function (request, reply) {
    const ids = checkIds(queryIds(request.query.ids), limits)
    return sendJsonText(reply, joinTexts(tasksOrThrow(reply, await loader.loadMany(ids, request.scope)), restText))
  })

  app.post<{ Body: { ids: unknown[] } }>('/v1/tasks', {
    schema: {
      body: {
        type: 'object',
        properties: { ids: { type: 'array' } },
        required: ['ids']
      }
    }
  }, async function (request, reply) {
    const ids = checkIds(request.body.ids, limits)
    return sendJsonText(reply, joinTexts(tasksOrThrow(reply, await loader.loadMany(ids, request.scope)), restText))
  })

  // Not async: a cache hit is answered without a promise (the hot path).
  app.get<{ Params: { id: string } }>('/v1/tasks/:id', function (request, reply) {
    const id = checkId(request.params.id, limits)
    return whenLoaded(loader.load(id, request.scope), (lookup) => {
      // The hottest answer of all: a fresh hit, written as the text it was stored as.
      if (lookup.cache === 'hit' && lookup.stored != null) return sendJsonText(reply.header('x-cache', 'hit'), lookup.stored.rest)
      const [task] = tasksOrThrow(reply, [lookup])
      if (task == null) throw new errors.TaskNotFound(id)
      return sendJsonText(reply, task.rest)
    })
  })
}
