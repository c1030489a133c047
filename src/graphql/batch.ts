import { Kind, parse, type OperationDefinitionNode } from 'graphql'
import { LRUCache } from 'lru-cache'
import type { preHandlerHookHandler, preSerializationHookHandler, preValidationHookHandler, RouteOptions } from 'fastify'
import { errors } from '../errors.js'
import { errorResult } from './errors.js'
import type { SecurityPolicy } from '../security/policy.js'
import { documentCost, fragmentsOf, idPlan, idsOf, type IdPlan } from './cost.js'

/*
 * Batched requests: a POST whose body is a JSON array of operations (Apollo's
 * BatchHttpLink, graphql-request's batchRequests). mercurius runs each
 * operation on its own, hooks included, so its per-operation checks
 * (src/graphql/limits.ts) would let a batch of ten carry ten times every
 * per-request limit. Here the batch is one request: before mercurius runs
 * anything, its operations' fields and ids are summed and held against
 * GRAPHQL_MAX_FIELDS and MAX_IDS_PER_REQUEST. (The rate limit already counts
 * the one HTTP request once.)
 *
 * The operations' lookups merge into the same upstream calls without help:
 * mercurius starts them together, each reaches its resolvers within the same
 * turn of the event loop (cache reads are synchronous), and the batcher
 * dispatches once per turn (src/core/batcher.ts).
 */

type Limits = SecurityPolicy['graphql']

/** What one query text costs: its fields as GRAPHQL_MAX_FIELDS counts them, and each operation's ids. */
interface QueryFacts {
  readonly fields: number
  /** By operation name; `''` for an anonymous operation. */
  readonly plans: ReadonlyMap<string, IdPlan>
}

/** A query that does not parse costs nothing here: mercurius answers its operation with the syntax error. */
const UNPARSABLE: QueryFacts = Object.freeze({ fields: 0, plans: new Map() })

/** Query text kept for reuse, in characters: clients send the same few queries over and over. */
const FACTS_CACHE_CHARS = 4 << 20

/** One operation of a batched body, as the route's body schema lets it through. */
interface Operation {
  readonly query?: unknown
  readonly variables?: unknown
  readonly operationName?: unknown
}

function factsOf (query: string): QueryFacts {
  let document
  try {
    document = parse(query, { noLocation: true })
  } catch {
    return UNPARSABLE
  }
  const fragments = fragmentsOf(document)
  const plans = new Map<string, IdPlan>()
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue
    const operation = definition as OperationDefinitionNode
    plans.set(operation.name?.value ?? '', idPlan(operation, fragments))
  }
  return { fields: documentCost(document).fields, plans }
}

/** The ids of the operation that runs: the named one, the only one, or (ambiguous, so mercurius refuses it) the largest. */
function idsOfOperation (facts: QueryFacts, operation: Operation): number {
  const variables = typeof operation.variables === 'object' && operation.variables !== null
    ? operation.variables as Record<string, unknown>
    : {}
  const name = typeof operation.operationName === 'string' ? operation.operationName : undefined
  const chosen = name !== undefined ? facts.plans.get(name) : facts.plans.size === 1 ? facts.plans.values().next().value : undefined
  if (chosen !== undefined) return idsOf(chosen, variables)
  let most = 0
  for (const plan of facts.plans.values()) most = Math.max(most, idsOf(plan, variables))
  return most
}

/** The per-request limits of a batch, counted over all its operations. */
export class BatchAccounting {
  readonly #limits: Limits
  readonly #facts = new LRUCache<string, QueryFacts>({ maxSize: FACTS_CACHE_CHARS, sizeCalculation: (_facts, query) => Math.max(query.length, 1) })

  constructor (limits: Limits) {
    this.#limits = limits
  }

  /** The operation count, checked before the body's schema is (which walks every entry). */
  checkSize (body: unknown): void {
    if (!Array.isArray(body)) return
    if (body.length > this.#limits.maxBatch) throw new errors.BatchTooLarge(body.length, this.#limits.maxBatch)
    if (body.length === 0) throw new errors.BadRequest('A batch must hold at least one operation')
  }

  /** Fields and ids of all the operations together, against the limits of one request. */
  checkTotals (batch: readonly Operation[]): void {
    let fields = 0
    let ids = 0
    for (const operation of batch) {
      // mercurius answers an operation without a query with an error of its own.
      if (typeof operation.query !== 'string') continue
      const facts = this.#factsOf(operation.query)
      fields += facts.fields
      ids += idsOfOperation(facts, operation)
    }
    const { maxFields, maxIds } = this.#limits
    if (fields > maxFields) {
      throw new errors.QueryTooComplex(`The batch's ${batch.length} operations select ${fields} fields together (aliases and fragment uses counted); at most ${maxFields} allowed per request (GRAPHQL_MAX_FIELDS)`)
    }
    if (ids > maxIds) throw new errors.TooManyIds(ids, maxIds)
  }

  #factsOf (query: string): QueryFacts {
    let facts = this.#facts.get(query)
    if (facts === undefined) {
      facts = factsOf(query)
      this.#facts.set(query, facts)
    }
    return facts
  }
}

/**
 * An onRoute hook for mercurius' POST route: the batch's size before its body
 * schema is checked, then its totals once the body is known to be well-formed,
 * and last the results, where an operation mercurius answered with a bare
 * Error (no query) gets a GraphQL result like the others. A single operation
 * (a JSON object) passes through all three untouched.
 */
export function batchedRoute (path: string, accounting: BatchAccounting) {
  // Callback hooks, not async ones: every POST /graphql passes through them, single operations on the hot path.
  const batchSize: preValidationHookHandler = function (request, _reply, done) {
    try {
      accounting.checkSize(request.body)
    } catch (err) {
      return done(err as Error)
    }
    done()
  }
  const batchTotals: preHandlerHookHandler = function (request, _reply, done) {
    // A body of the wrong shape is reported by mercurius' handler.
    if (request.validationError !== undefined || !Array.isArray(request.body)) return done()
    try {
      accounting.checkTotals(request.body as Operation[])
    } catch (err) {
      return done(err as Error)
    }
    done()
  }
  const batchResults: preSerializationHookHandler<unknown> = function (request, _reply, payload, done) {
    done(null, Array.isArray(payload) ? payload.map((result: unknown) => result instanceof Error ? errorResult(result, request) : result) : payload)
  }
  return function (route: RouteOptions): void {
    if (route.url !== path || route.method !== 'POST') return
    route.preValidation = [...[route.preValidation ?? []].flat(), batchSize]
    route.preHandler = [...[route.preHandler ?? []].flat(), batchTotals]
    route.preSerialization = [...[route.preSerialization ?? []].flat(), batchResults]
  }
}
