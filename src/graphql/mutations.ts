import type { IResolvers, MercuriusContext } from 'mercurius'
import { errors, type GatewayError } from '../errors.js'
import { checkIdempotencyKey, type SubmitOutcome } from '../core/idempotency.js'
import { isCreatedCode } from '../core/task-rules.js'
import type { UpstreamTask } from '../upstream/types.js'
import { resolveLookup } from './resolvers.js'

/** The mutations and the upstream submit each one relays. */
const SUBMITS = {
  imagine: 'imagine',
  action: 'action',
  modal: 'modal',
  describe: 'describe',
  blend: 'blend'
} as const

/** `SubmitResult` as the resolvers pass it on. */
export interface SubmitResultValue {
  readonly code: number
  readonly description: string | null
  readonly result: string | null
  readonly properties: unknown
  readonly replayed: boolean
}

interface SubmitArgs {
  input: Record<string, unknown>
  idempotencyKey?: string | null
}

/** The body upstream gets: the input's fields, without those left out or null (Go's bind reads both as unset). */
export function upstreamBody (input: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(input)) if (value !== null && value !== undefined) body[name] = value
  return body
}

function describeAnswer (body: unknown): string {
  const description = (body as { description?: unknown } | null)?.description
  return typeof description === 'string' && description.trim() !== '' ? description.trim() : 'no description'
}

/**
 * Upstream's answer as a `SubmitResult`, or the coded error a query would
 * get. A body with an integer `code` is an answer when it came with a 2xx, or
 * with new-api's own 400 (its checks, such as `prompt_is_required`, are
 * validation refusals: code 4). Any other status is an upstream failure:
 * `UPSTREAM_RATE_LIMITED` for 429, `UPSTREAM_ERROR` otherwise. A 5xx never
 * gets here: the upstream client throws it already coded (502, or 503 UPSTREAM_UNAVAILABLE).
 */
export function submitResult (outcome: SubmitOutcome): SubmitResultValue {
  const { statusCode, body } = outcome
  const answer = body as { code?: unknown, description?: unknown, result?: unknown, properties?: unknown } | null
  const coded = answer !== null && typeof answer === 'object' && Number.isSafeInteger(answer.code)
  const ok = statusCode >= 200 && statusCode < 300
  if (coded && (ok || statusCode === 400)) {
    const result = answer.result
    return {
      code: answer.code as number,
      description: typeof answer.description === 'string' ? answer.description : null,
      result: typeof result === 'string' || typeof result === 'number' ? String(result) : null,
      properties: answer.properties ?? null,
      replayed: outcome.replayed
    }
  }
  if (ok) throw new errors.UpstreamBadResponse(`submit answered HTTP ${statusCode} without an integer code`)
  const what = `HTTP ${statusCode}: ${describeAnswer(body)}`
  const err: GatewayError = statusCode === 429 ? new errors.UpstreamRateLimited(what) : new errors.UpstreamError(what)
  err.upstreamStatus = statusCode
  throw err
}

function submitResolver (action: string) {
  return async function (_root: unknown, args: SubmitArgs, ctx: MercuriusContext): Promise<SubmitResultValue> {
    const request = ctx.reply.request
    const idempotencyKey = checkIdempotencyKey(args.idempotencyKey)
    const outcome = await ctx.app.gateway.loader.submit(action, upstreamBody(args.input), request.scope, {
      idempotencyKey,
      client: ctx.app.security.identify(request)
    })
    return submitResult(outcome)
  }
}

/**
 * `Mutation`: each field relays one upstream submit through the task loader,
 * as `POST /mj/submit/{action}` does, with the same tenancy and idempotency
 * scope. `SubmitResult.task` is read like any other lookup.
 */
export function mutationResolvers (): IResolvers {
  const Mutation: Record<string, ReturnType<typeof submitResolver>> = {}
  for (const [field, action] of Object.entries(SUBMITS)) Mutation[field] = submitResolver(action)
  return {
    Mutation,
    SubmitResult: {
      async task (result: SubmitResultValue, _args: unknown, ctx: MercuriusContext): Promise<UpstreamTask | null> {
        if (!isCreatedCode(result.code) || result.result === null || result.result === '') return null
        const task = resolveLookup(await ctx.app.gateway.loader.load(result.result, ctx.reply.request.scope), result.result, ctx)
        if (task instanceof Error) throw task
        return task
      }
    }
  }
}
