import Fastify from 'fastify'
import { fixtureTasks } from '../fixtures.js'
import { serve } from './child.js'

/** The REST anchor: bare Fastify answering the same task JSON from a Map. */
const tasks = fixtureTasks()
const app = Fastify({ logger: false })
app.get<{ Params: { id: string } }>('/v1/tasks/:id', async function (request, reply) {
  const task = tasks.get(request.params.id)
  if (task === undefined) return reply.code(404).send({ statusCode: 404 })
  return task
})
app.get<{ Querystring: { ids: string } }>('/v1/tasks', async function (request) {
  return request.query.ids.split(',').map((id) => tasks.get(id) ?? null)
})
const url = await app.listen({ port: 0, host: '127.0.0.1' })
serve(url, {}, () => app.close())
