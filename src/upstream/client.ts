import { Pool, errors as undiciErrors } from 'undici'
import type { Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import { errors, type GatewayError } from '../errors.js'
import { BadBodyError, parseTaskList, type ParsedList } from './validate.js'

export interface UpstreamClientOptions {
  /** Origin plus optional path prefix, no trailing slash. */
  baseUrl: string
  /** Default credential; a lookup may bring its own (pass-through tenancy). */
  key: string | undefined
  timeoutMs: number
  connections: number
  retries: number
  retryBaseMs: number
  retryAfterCapMs: number
  maxBodyBytes: number
  logger: FastifyBaseLogger
  /** Injectable for tests: jitter source and the wait between attempts. */
  random?: () => number
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
  /** Told about every upstream lookup, for metrics. */
  observer?: UpstreamObserver
}

/** `outcome` is `ok` or the error code a lookup failed with: a bounded set, safe as a metric label. */
export interface UpstreamObserver {
  callStarted (): void
  callFinished (outcome: string, durationMs: number): void
  retried (): void
}

/** Upstream's answer to a submit, relayed as it is. */
export interface SubmitAnswer {
  statusCode: number
  body: unknown
  /** Upstream's `Retry-After` on a 429, in seconds. */
  retryAfter?: number
}

interface Attempt {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

/** Thrown inside an attempt; `retry` says whether another attempt may help. */
class AttemptError extends Error {
  constructor (readonly failure: GatewayError, readonly retry: boolean, readonly retryAfterMs?: number) {
    super(failure.message)
  }
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504])

/** `Retry-After` on a client's own 429 when upstream sent none: a client must still be told to wait. */
const DEFAULT_RETRY_AFTER_S = 1

/**
 * The coded error for an upstream answer other than 200. `tenant` says whose
 * credential was refused: a pass-through client's own (its 401, 403 and 429
 * are its business, answered with the same status), or the gateway's
 * (an outage only the operator can fix, answered 5xx).
 */
function answerError (status: number, what: string, tenant: boolean, retryAfterMs: number | undefined): GatewayError {
  let err: GatewayError
  if (status === 401 || status === 403) {
    err = !tenant ? new errors.UpstreamKeyRejected(what) : status === 401 ? new errors.UpstreamUnauthorized(what) : new errors.UpstreamForbidden(what)
  } else if (status === 429) {
    err = tenant ? new errors.UpstreamCredentialRateLimited(what) : new errors.UpstreamRateLimited(what)
  } else {
    err = new errors.UpstreamError(what)
  }
  err.upstreamStatus = status
  if (retryAfterMs !== undefined) err.retryAfter = Math.ceil(retryAfterMs / 1000)
  else if (tenant && status === 429) err.retryAfter = DEFAULT_RETRY_AFTER_S
  return err
}

function abortableSleep (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) { reject(signal.reason); return }
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = (): void => { clearTimeout(timer); reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter (value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value
  if (raw === undefined || raw.trim() === '') return undefined
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000
  const date = Date.parse(raw)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * Upstream's `{description}` from an error body, trimmed, or what came instead.
 * A description that echoes the credential it was sent has it masked: the
 * text goes into client error messages and logs.
 */
function describeBody (text: string, credential: string | undefined): string {
  let description: string
  try {
    const body = JSON.parse(text)
    if (typeof body?.description !== 'string') throw new Error('no description')
    description = body.description.trim() || 'no description'
  } catch {
    return text.length === 0 ? 'empty body' : 'non-JSON body'
  }
  return mask(description, credential)
}

/** Upstream text with the credential it was sent replaced, should it echo it. */
function mask (text: string, credential: string | undefined): string {
  return credential === undefined || credential === '' ? text : text.replaceAll(credential, '[redacted]')
}

/** Upstream's `Retry-After` on a 429 or 503, in whole seconds (an HTTP date too). */
function retryAfterSeconds (status: number, headers: Attempt['headers']): number | undefined {
  if (status !== 429 && status !== 503) return undefined
  const ms = parseRetryAfter(headers['retry-after'])
  return ms === undefined ? undefined : Math.ceil(ms / 1000)
}

/**
 * A relayed call that upstream answered with a 5xx: upstream failing, not
 * answering, so the client gets the gateway's coded error as on lookups
 * (`UPSTREAM_ERROR`, 502), except that a 503 stays a 503
 * (`UPSTREAM_UNAVAILABLE`) with upstream's `Retry-After`.
 */
function relayFailure (route: string, status: number, text: string, credential: string | undefined, retryAfter: number | undefined): GatewayError {
  const what = `${route} answered HTTP ${status}: ${describeBody(text, credential)}`
  const err: GatewayError = status === 503 ? new errors.UpstreamUnavailable(what) : new errors.UpstreamError(what)
  err.upstreamStatus = status
  if (retryAfter !== undefined) err.retryAfter = retryAfter
  return err
}

/**
 * The only module that talks to CometAPI. One keep-alive undici pool, one
 * overall deadline per lookup that covers every retry, exponential backoff
 * with full jitter, `Retry-After` honoured up to a cap, and a bound on the
 * response size. Credentials go into the Authorization header and nowhere
 * else: never into an error message or a log line.
 */
export class UpstreamClient {
  readonly #pool: Pool
  readonly #prefix: string
  readonly #opts: Readonly<UpstreamClientOptions>
  readonly #random: () => number
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>

  constructor (opts: UpstreamClientOptions) {
    this.#opts = Object.freeze({ ...opts })
    const url = new URL(opts.baseUrl)
    this.#prefix = url.pathname.replace(/\/+$/, '')
    this.#random = opts.random ?? Math.random
    this.#sleep = opts.sleep ?? abortableSleep
    this.#pool = new Pool(url.origin, {
      connections: opts.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connect: { timeout: Math.min(opts.timeoutMs, 10_000) }
    })
  }

  /**
   * `POST /mj/task/list-by-condition` for up to one chunk of ids, checked by
   * the body guard. Rejects with a coded gateway error.
   */
  async listByCondition (ids: readonly string[], credential?: string): Promise<ParsedList> {
    const observer = this.#opts.observer
    if (observer === undefined) return this.#listByCondition(ids, credential)
    const started = performance.now()
    observer.callStarted()
    try {
      const list = await this.#listByCondition(ids, credential)
      observer.callFinished('ok', performance.now() - started)
      return list
    } catch (err) {
      observer.callFinished((err as GatewayError).code ?? 'unknown', performance.now() - started)
      throw err
    }
  }

  async #listByCondition (ids: readonly string[], credential: string | undefined): Promise<ParsedList> {
    const body = JSON.stringify({ ids })
    const tenant = credential !== undefined
    const attempt = await this.#withRetries('POST', '/mj/task/list-by-condition', body, credential ?? this.#opts.key, tenant)
    if (attempt.status !== 200) {
      throw answerError(attempt.status, `HTTP ${attempt.status}: ${describeBody(attempt.text, credential ?? this.#opts.key)}`, tenant, undefined)
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(attempt.text)
    } catch {
      throw this.#badResponse('body is not JSON', attempt, ids.length)
    }
    let list: ParsedList
    try {
      list = parseTaskList(parsed, new Set(ids))
    } catch (err) {
      if (err instanceof BadBodyError) throw this.#badResponse(err.message, attempt, ids.length)
      throw err
    }
    if (list.invalid.size > 0 || list.unrequested > 0 || list.duplicates > 0) {
      // Usable as a whole, but not clean: said once per body, a few reasons enough to find the entries.
      this.#opts.logger.warn({
        upstream: { status: attempt.status, bytes: attempt.text.length, ids: ids.length },
        invalid: list.invalid.size,
        unrequested: list.unrequested,
        duplicates: list.duplicates,
        reasons: [...list.invalid.values()].slice(0, 3)
      }, 'upstream list-by-condition body had unusable, unrequested or duplicate entries')
    }
    return list
  }

  /**
   * Relays `POST /mj/submit/{action}`: one attempt, since a submit is not
   * idempotent; the answer read within the size bound. Upstream's own answer
   * (2xx, 4xx) comes back as its status and JSON, with an echoed credential
   * masked in its `description` and its `Retry-After` (a 429) in seconds.
   * A 5xx is upstream failing, not answering: see relayFailure.
   */
  async submit (action: string, body: string, credential: string | undefined): Promise<SubmitAnswer> {
    const key = credential ?? this.#opts.key
    const signal = AbortSignal.timeout(this.#opts.timeoutMs)
    let text: string
    let statusCode: number
    let retryAfter: number | undefined
    try {
      const res = await this.#pool.request({ method: 'POST', path: `${this.#prefix}/mj/submit/${action}`, headers: this.#headers(key, 'application/json', true), body, signal })
      statusCode = res.statusCode
      retryAfter = retryAfterSeconds(statusCode, res.headers)
      text = await this.#readBody(res)
    } catch (err) {
      throw (err instanceof AttemptError ? err : this.#classify(err, signal)).failure
    }
    if (statusCode >= 500) throw relayFailure('submit', statusCode, text, key, retryAfter)
    let answer: unknown
    try {
      answer = JSON.parse(text)
    } catch {
      throw new errors.UpstreamBadResponse(`submit answered HTTP ${statusCode} with a non-JSON body`)
    }
    const described = answer as { description?: unknown } | null
    if (typeof described?.description === 'string') described.description = mask(described.description, key)
    return retryAfter === undefined ? { statusCode, body: answer } : { statusCode, body: answer, retryAfter }
  }

  /**
   * Streams `GET /mj/image/{id}` back unbuffered; the caller owns the body.
   * Upstream's 2xx and 4xx come back as they are, a 5xx as relayFailure says.
   * The deadline covers the answer's headers only: a large image to a slow
   * client may take longer, and a stalled one is cut by the body timeout.
   */
  async image (id: string, credential: string | undefined): Promise<Dispatcher.ResponseData> {
    const key = credential ?? this.#opts.key
    let res: Dispatcher.ResponseData
    try {
      res = await this.#pool.request({
        method: 'GET',
        path: `${this.#prefix}/mj/image/${encodeURIComponent(id)}`,
        headers: this.#headers(key, 'image/*', false),
        headersTimeout: this.#opts.timeoutMs
      })
    } catch (err) {
      throw this.#classify(err, undefined).failure
    }
    if (res.statusCode < 500) {
      // A 429's Retry-After in whole seconds, as on submits; one that cannot be read is not passed on.
      const retryAfter = retryAfterSeconds(res.statusCode, res.headers)
      if (retryAfter === undefined) delete res.headers['retry-after']
      else res.headers['retry-after'] = String(retryAfter)
      return res
    }
    let text: string
    try {
      text = await this.#readBody(res)
    } catch (err) {
      throw (err instanceof AttemptError ? err : this.#classify(err, undefined)).failure
    }
    throw relayFailure('image', res.statusCode, text, key, retryAfterSeconds(res.statusCode, res.headers))
  }

  #headers (credential: string | undefined, accept: string, json: boolean): Record<string, string> {
    const headers: Record<string, string> = { accept }
    if (json) headers['content-type'] = 'application/json'
    if (credential !== undefined) headers.authorization = `Bearer ${credential}`
    return headers
  }

  async close (): Promise<void> {
    await this.#pool.close()
  }

  #badResponse (reason: string, attempt: Attempt, idCount: number): GatewayError {
    this.#opts.logger.warn({ upstream: { status: attempt.status, contentType: attempt.headers['content-type'], bytes: attempt.text.length, ids: idCount }, reason },
      'upstream sent an unusable list-by-condition body')
    return new errors.UpstreamBadResponse(reason)
  }

  async #withRetries (method: Dispatcher.HttpMethod, path: string, body: string, credential: string | undefined, tenant: boolean): Promise<Attempt> {
    const { timeoutMs, retries, retryBaseMs, retryAfterCapMs } = this.#opts
    const deadline = Date.now() + timeoutMs
    const signal = AbortSignal.timeout(timeoutMs)
    for (let attempt = 0; ; attempt++) {
      let failure: AttemptError
      try {
        return await this.#attempt(method, path, body, credential, tenant, signal)
      } catch (err) {
        failure = err instanceof AttemptError ? err : this.#classify(err, signal)
      }
      const remaining = deadline - Date.now()
      if (!failure.retry || attempt >= retries || remaining <= 0) throw failure.failure
      let delay: number
      if (failure.retryAfterMs !== undefined) {
        // Upstream said how long to wait; waiting longer than the cap is the client's call, not ours.
        if (failure.retryAfterMs > retryAfterCapMs) throw failure.failure
        delay = failure.retryAfterMs
      } else {
        delay = Math.floor(this.#random() * retryBaseMs * 2 ** attempt)
      }
      if (delay >= remaining) throw failure.failure
      this.#opts.logger.debug({ attempt: attempt + 1, delay, reason: failure.message }, 'retrying upstream call')
      this.#opts.observer?.retried()
      try {
        await this.#sleep(delay, signal)
      } catch {
        throw new errors.UpstreamTimeout(timeoutMs)
      }
    }
  }

  async #attempt (method: Dispatcher.HttpMethod, path: string, body: string, credential: string | undefined, tenant: boolean, signal: AbortSignal): Promise<Attempt> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
    if (credential !== undefined) headers.authorization = `Bearer ${credential}`
    const res = await this.#pool.request({ method, path: this.#prefix + path, headers, body, signal })
    const text = await this.#readBody(res)
    const status = res.statusCode
    if (RETRYABLE_STATUS.has(status)) {
      const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(res.headers['retry-after']) : undefined
      const failure = answerError(status, `HTTP ${status}: ${describeBody(text, credential)}`, tenant, retryAfterMs)
      throw new AttemptError(failure, true, retryAfterMs)
    }
    return { status, headers: res.headers, text }
  }

  async #readBody (res: Dispatcher.ResponseData): Promise<string> {
    const max = this.#opts.maxBodyBytes
    const declared = Number(res.headers['content-length'])
    if (declared > max) {
      res.body.destroy()
      throw this.#oversized(res, `body of ${declared} bytes exceeds the ${max}-byte limit`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > max) {
        res.body.destroy()
        throw this.#oversized(res, `body exceeds the ${max}-byte limit`)
      }
      chunks.push(chunk as Buffer)
    }
    return Buffer.concat(chunks, size).toString('utf8')
  }

  /** Logged here because the body never reaches the JSON checks that log the other bad bodies. */
  #oversized (res: Dispatcher.ResponseData, reason: string): AttemptError {
    this.#opts.logger.warn({ upstream: { status: res.statusCode, contentType: res.headers['content-type'], limit: this.#opts.maxBodyBytes }, reason },
      'upstream sent an unusable list-by-condition body')
    return new AttemptError(new errors.UpstreamBadResponse(reason), false)
  }

  #classify (err: unknown, signal: AbortSignal | undefined): AttemptError {
    if (signal?.aborted === true || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
      return new AttemptError(new errors.UpstreamTimeout(this.#opts.timeoutMs), false)
    }
    const code = (err as { code?: string }).code ?? 'unknown'
    // Connection-level failures (refused, reset, closed early, connect timeout) are safe to retry for a read.
    return new AttemptError(new errors.UpstreamError(`connection failed (${code})`), true)
  }
}
