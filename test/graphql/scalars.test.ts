import t from 'tap'
import { readFileSync } from 'node:fs'
import { buildClientSchema, buildSchema, getIntrospectionQuery, type IntrospectionQuery } from 'graphql'
import { diff } from '@graphql-inspector/core'
import { SCHEMA_PATH } from '../../src/graphql/index.js'
import { setup } from '../helpers/gateway.js'

/** The schema as a client sees it: introspection over HTTP from the gateway on a real port. */
async function servedSchema (url: string): Promise<ReturnType<typeof buildClientSchema>> {
  const query = getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true })
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) })
  const body = await res.json() as { data: IntrospectionQuery, errors?: unknown }
  if (res.status !== 200 || body.errors !== undefined) throw new Error(`introspection failed: ${res.status} ${JSON.stringify(body.errors)}`)
  return buildClientSchema(body.data)
}

t.test('graphql-inspector finds no change between schema/schema.graphql and the served schema', async (t) => {
  const { app } = await setup(t)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const served = await servedSchema(url)
  const file = buildSchema(readFileSync(SCHEMA_PATH, 'utf8'))

  const changes = await diff(file, served)
  t.strictSame(changes.map((change) => `${change.type} ${change.path ?? ''}: ${change.message}`), [], 'no change of any kind')
  // The two scalars whose resolvers come from graphql-scalars keep the file's descriptions.
  for (const name of ['Timestamp', 'JSON']) {
    const type = served.getType(name)
    t.equal(type?.description, file.getType(name)?.description, `${name} description`)
    t.equal((type as { specifiedByURL?: unknown } | undefined)?.specifiedByURL ?? null, null, `${name} has no specifiedByURL the file does not declare`)
  }
})

t.test('the scalars still serialize as graphql-scalars does', async (t) => {
  const { app, upstream } = await setup(t)
  upstream.add({ id: '1', submitTime: 1_689_231_405_853, properties: { finalPrompt: 'a cat', n: [1, null] } })
  const res = await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ task(id: "1") { submitTime properties } }' } })
  t.strictSame(res.json(), { data: { task: { submitTime: 1_689_231_405_853, properties: { finalPrompt: 'a cat', n: [1, null] } } } })
})
