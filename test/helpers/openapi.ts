import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import Ajv2020Module from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { OPENAPI_PATH } from '../../src/routes/docs.js'

/*
 * openapi.yaml as data, and a checker that holds real responses against it:
 * status, media type, body schema and documented headers, with a record of
 * which documented `METHOD /path status` each check produced.
 */

// ajv is CommonJS: under NodeNext the default import is module.exports, whose `default` is the class.
const Ajv2020 = Ajv2020Module.default
const addFormats = addFormatsModule.default

export type Json = Record<string, any>

export const spec: Json = parse(readFileSync(OPENAPI_PATH, 'utf8'))
export const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const

const ajv = new Ajv2020({ allErrors: true })
addFormats(ajv)
// OpenAPI's annotation keywords in schema objects, and the document's own top-level
// fields: ajv compiles the document's root when it resolves a ref into it.
ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs',
  'openapi', 'info', 'servers', 'tags', 'paths', 'components', 'security', 'webhooks', 'jsonSchemaDialect'])
ajv.addSchema(spec, 'openapi')

/** A JSON pointer as a URI fragment: `~` and `/` escaped, then percent-encoded (`{id}`). */
export function pointer (...segments: string[]): string {
  return segments.map((s) => '/' + encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('')
}

function at (ref: string): Json {
  let node: any = spec
  for (const raw of ref.replace(/^#\//, '').split('/')) node = node[decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')]
  if (node === undefined) throw new Error(`${ref} is not in openapi.yaml`)
  return node
}

/** Follows a `$ref` (response, header, example) and returns the node with the pointer it lives at. */
export function deref (node: Json, where: string): { node: Json, where: string } {
  while (typeof node.$ref === 'string') {
    where = node.$ref.slice(1)
    node = at(node.$ref)
  }
  return { node, where }
}

/** A validator for the schema at `where`: undefined when the value matches, else ajv's errors as text. */
export function validator (where: string): (value: unknown) => string | undefined {
  // Compiling a $ref into the document compiles only that schema, never the document's root.
  const validate = ajv.compile({ $ref: `openapi#${where}` })
  return (value) => validate(value) ? undefined : ajv.errorsText(validate.errors, { dataVar: 'body' })
}

/** Every documented `METHOD /path status`, except `default`. */
export function documentedResponses (): Set<string> {
  const out = new Set<string>()
  for (const [path, item] of Object.entries<Json>(spec.paths)) {
    for (const method of METHODS) {
      for (const status of Object.keys(item[method]?.responses ?? {})) {
        if (status !== 'default') out.add(`${method.toUpperCase()} ${path} ${status}`)
      }
    }
  }
  return out
}

type Assert = Pick<Test, 'ok' | 'notOk' | 'equal'>

/** The data of each `event: task` frame of an event stream, parsed. */
export function taskEvents (body: string): unknown[] {
  return [...body.matchAll(/^event: task\n(?:id: .*\n)?data: (.*)$/gm)].map((m) => JSON.parse(m[1]!))
}

/**
 * Sends requests through `app.inject` and checks each answer against the
 * operation it belongs to. `covered` collects the documented statuses seen,
 * as `METHOD /path status`.
 */
export class ResponseChecker {
  readonly #t: Assert

  /** `covered` may be shared by the checkers of several tests. */
  constructor (t: Assert, readonly covered = new Set<string>()) {
    this.#t = t
  }

  async check (on: FastifyInstance, method: 'GET' | 'POST', path: string, request: InjectOptions, expectStatus: number, name: string): Promise<LightMyRequestResponse> {
    const t = this.#t
    const res = await on.inject({ method, ...request })
    const op = spec.paths[path]?.[method.toLowerCase()]
    t.ok(op, `${method} ${path} is documented`)
    t.equal(res.statusCode, expectStatus, `${name}: status`)
    // An exact status wins over its range (`4XX`), as in OpenAPI.
    const exact = String(res.statusCode)
    const status = op.responses[exact] !== undefined ? exact : `${exact[0]}XX`
    const documented = op.responses[status] !== undefined
    t.ok(documented, `${name}: ${method} ${path} documents ${exact}`)
    if (!documented) return res
    this.covered.add(`${method} ${path} ${status}`)
    const { node: response, where } = deref(op.responses[status], pointer('paths', path, method.toLowerCase(), 'responses', status))

    const type = String(res.headers['content-type'] ?? '').split(';')[0]!.trim()
    const mediaKey = [type, type.replace(/\/.*/, '/*')].find((key) => response.content?.[key] !== undefined)
    t.ok(mediaKey, `${name}: ${type} is a documented media type`)
    if (mediaKey !== undefined && response.content[mediaKey].schema !== undefined) {
      const body = type === 'application/json' ? res.json() : res.body
      t.equal(validator(where + pointer('content', mediaKey, 'schema'))(body), undefined, `${name}: body matches the schema`)
    }
    for (const [header, raw] of Object.entries<Json>(response.headers ?? {})) {
      const { node, where: headerAt } = deref(raw, where + pointer('headers', header))
      const value = res.headers[header.toLowerCase()]
      if (value === undefined) {
        t.notOk(node.required, `${name}: required header ${header} is present`)
        continue
      }
      t.equal(validator(headerAt + '/schema')(value), undefined, `${name}: header ${header}: ${String(value)}`)
    }
    return res
  }
}
