import t from 'tap'
import { parse } from 'yaml'
import { createConfig, lintFromString } from '@redocly/openapi-core'
import { setup } from '../helpers/gateway.js'

/**
 * The spec as a client downloads it: GET /openapi.yaml from a gateway on a
 * real port with client keys on, linted by Redocly's `recommended` ruleset,
 * and its security declarations checked against what the gateway enforces.
 */

const CLIENT_KEY = 'gw-client-key-spec-0123456789'
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const

type Json = Record<string, any>

interface Operation { method: string, path: string, op: Json }

function operations (spec: Json): Operation[] {
  const out: Operation[] = []
  for (const [path, item] of Object.entries<Json>(spec.paths)) {
    for (const method of METHODS) if (item[method] !== undefined) out.push({ method, path, op: item[method] })
  }
  return out
}

/** Scheme names an operation accepts (its own `security`, else the document's). */
function schemesOf (spec: Json, op: Json): { names: Set<string>, anonymous: boolean } {
  const requirements: Json[] = op.security ?? spec.security ?? []
  return {
    names: new Set(requirements.flatMap((r) => Object.keys(r))),
    anonymous: requirements.length === 0 || requirements.some((r) => Object.keys(r).length === 0)
  }
}

/** A concrete URL for a documented path: `{id}` → a valid id, required query parameters filled in. */
function concreteUrl (path: string, op: Json): string {
  const url = path.replace('{id}', '1700000000000101').replace('{action}', 'imagine')
  const query = (op.parameters ?? []).filter((p: Json) => p.in === 'query' && p.required === true).map((p: Json) => `${p.name}=1700000000000101`)
  return query.length === 0 ? url : `${url}?${query.join('&')}`
}

async function servedSpec (t: Parameters<typeof setup>[0]): Promise<{ base: string, text: string, spec: Json }> {
  const { app } = await setup(t, { security: { apiKeys: CLIENT_KEY } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const res = await fetch(`${base}/openapi.yaml`, { headers: { 'x-api-key': CLIENT_KEY } })
  if (res.status !== 200) throw new Error(`GET /openapi.yaml answered ${res.status}`)
  const text = await res.text()
  return { base, text, spec: parse(text) }
}

t.test('the served /openapi.yaml passes Redocly\'s recommended ruleset with 0 errors', async (t) => {
  const { base, text, spec } = await servedSpec(t)
  t.equal(spec.openapi, '3.1.0')
  const config = await createConfig({ extends: ['recommended'] })
  const problems = await lintFromString({ source: text, absoluteRef: `${base}/openapi.yaml`, config })
  for (const p of problems) t.comment(`${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`)
  const errors = problems.filter((p) => p.severity === 'error')
  t.same(errors.map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`), [], '0 errors')
  t.comment(`redocly recommended: ${errors.length} errors, ${problems.length - errors.length} warnings`)
})

t.test('the served spec declares the client-key schemes and every data route references them', async (t) => {
  const { spec } = await servedSpec(t)
  const schemes: Json = spec.components?.securitySchemes ?? {}
  const bearer = Object.entries<Json>(schemes).filter(([, s]) => s.type === 'http' && String(s.scheme).toLowerCase() === 'bearer').map(([name]) => name)
  const apiKey = Object.entries<Json>(schemes).filter(([, s]) => s.type === 'apiKey' && s.in === 'header' && String(s.name).toLowerCase() === 'x-api-key').map(([name]) => name)
  t.ok(bearer.includes('bearer'), 'an http bearer scheme named "bearer" (Authorization: Bearer <key>)')
  t.same(apiKey, ['apiKey'], 'an apiKey scheme in the x-api-key header')

  const data = operations(spec).filter(({ path }) => path.startsWith('/v1/') || path.startsWith('/mj/'))
  t.ok(data.length >= 7, `${data.length} data operations`)
  for (const { method, path, op } of data) {
    const { names } = schemesOf(spec, op)
    t.ok(names.has('bearer') && names.has('apiKey'), `${method.toUpperCase()} ${path} accepts bearer and apiKey`)
  }
  for (const path of ['/healthz', '/readyz']) {
    t.same(spec.paths[path].get.security, [], `GET ${path} is open (security: [])`)
  }
  // Every scheme an operation names is declared.
  for (const { method, path, op } of operations(spec)) {
    for (const name of schemesOf(spec, op).names) t.ok(schemes[name], `${method.toUpperCase()} ${path}: scheme ${name} is declared`)
  }
})

t.test('with client keys on, the gateway enforces what the served spec declares', async (t) => {
  const { base, spec } = await servedSpec(t)
  for (const { method, path, op } of operations(spec)) {
    const { names, anonymous } = schemesOf(spec, op)
    const url = `${base}${concreteUrl(path, op)}`
    const init: RequestInit = { method: method.toUpperCase() }
    if (method === 'post') Object.assign(init, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: ['1700000000000101'] }) })
    if (names.has('apiKey')) {
      const res = await fetch(url, init)
      await res.body?.cancel()
      t.equal(res.status, 401, `${method.toUpperCase()} ${path} without a key: 401`)
      t.match(res.headers.get('www-authenticate'), /^Bearer /, `${method.toUpperCase()} ${path}: www-authenticate`)
    } else if (anonymous && names.size === 0) {
      const res = await fetch(url, init)
      await res.body?.cancel()
      t.equal(res.status, 200, `${method.toUpperCase()} ${path} needs no key`)
    }
  }

  // Both schemes open the same route.
  const url = `${base}/v1/tasks?ids=1700000000000101`
  for (const headers of [{ authorization: `Bearer ${CLIENT_KEY}` }, { 'x-api-key': CLIENT_KEY }] as Array<Record<string, string>>) {
    const res = await fetch(url, { headers })
    await res.body?.cancel()
    t.equal(res.status, 200, `${Object.keys(headers)[0]}: 200`)
  }
})
