import t from 'tap'
import { errors, isGatewayError } from '../src/errors.js'

t.test('every coded error has a unique code and a client-facing status', async (t) => {
  const codes = Object.values(errors).map((E) => new E('x', 1).code)
  t.equal(new Set(codes).size, codes.length, `codes are unique: ${codes.join(', ')}`)
  for (const E of Object.values(errors)) {
    const err = new E('x', 1)
    t.ok(isGatewayError(err), `${err.code} is recognised as a gateway error`)
    t.ok(err.statusCode >= 400 && err.statusCode < 600, `${err.code} has an HTTP error status`)
    t.match(err.code, /^(GW_ERR_[A-Z_]+|UPSTREAM_[A-Z_]+|UNAUTHENTICATED)$/, `${err.code} follows the naming scheme`)
  }
})

t.test('errors format their message from arguments', async (t) => {
  t.equal(new errors.UpstreamTimeout(250).message, 'Upstream did not answer within 250 ms')
  t.equal(new errors.TooManyIds(600, 500).message, 'Too many ids: 600 given, at most 500 allowed per request')
})
