import Fastify from 'fastify'
import { HIT_ID, makeTask } from '../fixtures.js'
import { serve } from './child.js'

/** The REST anchor: bare Fastify answering the same task JSON from a Map. */
const tasks = new Map([[HIT_ID, makeTask(HIT_ID)]])
const app = Fastify({ logger: false })
app.get<{ Params: { id: string } }>('/v1/tasks/:id', async function (request, reply) {
  const task = tasks.get(request.params.id)
  if (task === undefined) return reply.code(404).send({ statusCode: 404 })
  return task
})
const url = await app.listen({ port: 0, host: '127.0.0.1' })
serve(url, {}, () => app.close())
