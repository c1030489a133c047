import type { FastifyServerOptions } from 'fastify'
import type { LogLevel } from './config.js'

/** Headers that carry credentials: never logged, at any level. */
export const REDACTED_PATHS = Object.freeze([
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]'
])

/** pino options of the gateway's logger: the level, and credentials censored. */
export function loggerOptions (level: LogLevel): FastifyServerOptions['logger'] {
  return { level, redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' } }
}
