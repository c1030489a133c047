import { readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

/** openapi.yaml at the repo root: two levels up from both src/routes/ and dist/routes/. */
export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url))

/**
 * The REST API description as written (GET /openapi.yaml) and a Swagger UI
 * page over it at /docs, with its assets served locally by @fastify/swagger-ui.
 * Not wrapped in fastify-plugin, so the `swagger` decorator stays in here.
 */
export default async function docsRoutes (app: FastifyInstance): Promise<void> {
  // Read once: a missing file fails start-up, not a request.
  const spec = readFileSync(OPENAPI_PATH)

  app.get('/openapi.yaml', async function (request, reply) {
    return reply.type('application/yaml; charset=utf-8').header('cache-control', 'no-cache').send(spec)
  })

  await app.register(swagger, { mode: 'static', specification: { path: OPENAPI_PATH, baseDir: dirname(OPENAPI_PATH) } })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { deepLinking: true, docExpansion: 'list', displayRequestDuration: true },
    theme: { title: 'Midjourney task gateway · API docs' }
  })
}
