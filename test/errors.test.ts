import { readdirSync, readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { SETTINGS } from '../src/config.js'
import { errors, isGatewayError } from '../src/errors.js'

t.test('every coded error has a unique code and a client-facing status', async (t) => {
  const codes = Object.values(errors).map((E) => new E('x', 1).code)
  t.equal(new Set(codes).size, codes.length, `codes are unique: ${codes.join(', ')}`)
  for (const E of Object.values(errors)) {
    const err = new E('x', 1)
    t.ok(isGatewayError(err), `${err.code} is recognised as a gateway error`)
    t.ok(err.statusCode >= 400 && err.statusCode < 600, `${err.code} has an HTTP error status`)
    t.match(err.code, /^(GW_ERR_[A-Z_]+|UPSTREAM_[A-Z_]+|UNAUTHENTICATED|GRAPHQL_VALIDATION_FAILED)$/, `${err.code} follows the naming scheme`)
  }
})

t.test('errors format their message from arguments', async (t) => {
  t.equal(new errors.UpstreamTimeout(250).message, 'Upstream did not answer within 250 ms')
  t.equal(new errors.TooManyIds(600, 500).message, 'Too many ids: 600 given, at most 500 allowed per request')
})

/** Every string shaped like a client-visible code, wherever it is written. */
const CODE_PATTERN = /\b(GW_ERR_[A-Z0-9_]+|UPSTREAM_[A-Z0-9_]+|UNAUTHENTICATED|GRAPHQL_[A-Z0-9_]+_FAILED)\b/g

function sourcesUnder (dir: URL): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const url = new URL(entry.name + (entry.isDirectory() ? '/' : ''), dir)
    if (entry.isDirectory()) out.push(...sourcesUnder(url))
    else if (/\.(ts|js|graphql)$/.test(entry.name)) out.push(fileURLToPath(url))
  }
  return out
}

t.test('every code written in src/ or openapi.yaml is in the error table', async (t) => {
  const table = new Set<string>(Object.values(errors).map((E) => new E('x', 1).code))
  // Environment variables share the UPSTREAM_ prefix; they are settings, not codes.
  const settings = new Set(SETTINGS.map((s) => s.env))
  const files = [...sourcesUnder(new URL('../src/', import.meta.url)), fileURLToPath(new URL('../openapi.yaml', import.meta.url))]
  t.ok(files.length > 20, `read ${files.length} files`)
  const unknown: string[] = []
  let seen = 0
  for (const file of files) {
    for (const [code] of readFileSync(file, 'utf8').matchAll(CODE_PATTERN)) {
      if (settings.has(code)) continue
      seen++
      if (!table.has(code)) unknown.push(`${relative(process.cwd(), file)}: ${code}`)
    }
  }
  t.ok(seen > 10, `found ${seen} code strings`)
  t.strictSame(unknown, [], 'no code outside the table')
})

t.test('errors are classified by class: a copied code string is not a gateway error of that kind', async (t) => {
  const lookalike = Object.assign(new Error('x'), { code: 'UPSTREAM_ERROR', statusCode: 502 })
  t.equal(lookalike instanceof errors.UpstreamError, false)
  t.equal(new errors.UpstreamError('x') instanceof errors.UpstreamError, true)
})
