import type { IResolvers, MercuriusContext } from 'mercurius'
import { checkId, type IdLimits } from '../core/ids.js'
import { errors } from '../errors.js'
import { isFinalStatus, progressPercent } from '../core/task-rules.js'
import { whenLoaded, type Lookup } from '../core/task-loader.js'
import type { UpstreamTask } from '../upstream/types.js'
import { JSONScalar, TimestampScalar } from './scalars.js'
import { noteLookup } from './response-cache.js'

/** Ids answered from stale cache during one operation, reported in `extensions.stale`. */
export interface StaleMark { id: string, ageMs: number }

declare module 'mercurius' {
  interface MercuriusContext {
    staleTasks?: StaleMark[]
  }
}

/**
 * A lookup as a GraphQL list item: the task, null, or an Error. graphql-js
 * turns an Error item into an entry in `errors` with that item's path and
 * nulls only that item, which is how one failed id stays out of the others' way.
 */
export function resolveLookup (lookup: Lookup, id: string, ctx: MercuriusContext): UpstreamTask | null | Error {
  noteLookup(ctx.reply.request, id, lookup)
  if (lookup.error !== undefined) return lookup.error
  if (lookup.cache === 'stale') (ctx.staleTasks ??= []).push({ id, ageMs: lookup.ageMs })
  return lookup.stored === null ? null : lookup.stored.task
}

/**
 * The errors of the bad ids in a list, by position, or undefined when all are
 * well-formed (the common case, which allocates nothing).
 */
function badIds (ids: readonly string[], limits: IdLimits): Map<number, Error> | undefined {
  let bad: Map<number, Error> | undefined
  for (let i = 0; i < ids.length; i++) {
    try {
      checkId(ids[i], limits, `ids[${i}]`)
    } catch (err) {
      (bad ??= new Map()).set(i, err as Error)
    }
  }
  return bad
}

/** `""` (some proxies' unset time) reads as null; 0 and real values pass through unchanged. */
function timestamp (value: unknown): number | null {
  return typeof value === 'number' ? value : null
}

export function buildResolvers (): IResolvers {
  return {
    Timestamp: TimestampScalar,
    JSON: JSONScalar,
    Query: {
      // Not async: a query answered from the cache resolves synchronously (JIT's fast path).
      // A bad id is an error for its own item, like an upstream failure: the other ids are
      // still answered (a 200 with partial data), and the bad one is never looked up.
      tasks (_root, args: { ids: string[] }, ctx) {
        const { loader, config } = ctx.app.gateway
        const { ids } = args
        // Already refused before execution (src/graphql/limits.ts); kept so no path skips it.
        if (ids.length > config.limits.maxIdsPerRequest) throw new errors.TooManyIds(ids.length, config.limits.maxIdsPerRequest)
        const bad = badIds(ids, config.limits)
        const wanted = bad === undefined ? ids : ids.filter((_, i) => !bad.has(i))
        return whenLoaded(loader.loadMany(wanted, ctx.reply.request.scope), (lookups) => {
          let next = 0
          return ids.map((id, i) => bad?.get(i) ?? resolveLookup(lookups[next++]!, id, ctx))
        })
      },
      task (_root, args: { id: string }, ctx) {
        const { loader, config } = ctx.app.gateway
        const id = checkId(args.id, config.limits)
        return whenLoaded(loader.load(id, ctx.reply.request.scope), (lookup) => {
          const result = resolveLookup(lookup, id, ctx)
          if (result instanceof Error) throw result
          return result
        })
      }
    },
    Task: {
      submitTime: (task: UpstreamTask) => timestamp(task.submitTime),
      startTime: (task: UpstreamTask) => timestamp(task.startTime),
      finishTime: (task: UpstreamTask) => timestamp(task.finishTime),
      final: (task: UpstreamTask) => isFinalStatus(task.status),
      progressPercent: (task: UpstreamTask) => progressPercent(task.progress)
    }
  }
}
