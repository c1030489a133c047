import {
  Kind,
  Location,
  NoSchemaIntrospectionCustomRule,
  type DocumentNode,
  type OperationDefinitionNode,
  type ValidationRule
} from 'graphql'
import type { MercuriusOptions } from 'mercurius'
import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import type { SecurityPolicy } from '../security/policy.js'
import { documentCost, fragmentsOf, idPlan, idsOf, type IdPlan } from './cost.js'
import { safeErrorFormatter } from './errors.js'

type Limits = SecurityPolicy['graphql']

/** Validation rules beyond graphql-js's own, the same on HTTP and WebSocket: introspection per policy. */
export function extraValidationRules (limits: Limits): ValidationRule[] {
  return limits.introspection ? [] : [NoSchemaIntrospectionCustomRule]
}

/** Options spread into mercurius' registration: batching, the error formatter, introspection per policy. */
export function graphqlSecurityOptions (limits: Limits): Pick<MercuriusOptions, 'allowBatchedQueries' | 'errorFormatter' | 'validationRules'> {
  const validationRules = extraValidationRules(limits)
  return {
    // JSON arrays of operations, held to the per-request limits as a whole by src/graphql/batch.ts.
    allowBatchedQueries: true,
    errorFormatter: safeErrorFormatter as MercuriusOptions['errorFormatter'],
    validationRules
  }
}

/**
 * Depth and field limits of a parsed document, checked before graphql-js
 * validation (whose overlapping-fields rule is quadratic in the fields of a
 * selection set). mercurius reads a query that does not parse as a
 * JSON-encoded AST (`null` and `1` included); only GraphQL source text is
 * accepted, and parse() alone sets `loc`.
 */
export function checkDocument (document: unknown, limits: Limits): asserts document is DocumentNode {
  const parsed = document as DocumentNode | null | undefined
  if (typeof parsed !== 'object' || parsed === null || !(parsed.loc instanceof Location) || !Array.isArray(parsed.definitions)) {
    throw new errors.BadRequest('query must be a GraphQL document')
  }
  const cost = documentCost(parsed)
  if (cost.depth > limits.maxDepth) {
    throw new errors.QueryTooComplex(`Query is ${cost.depth} levels deep; at most ${limits.maxDepth} allowed (GRAPHQL_MAX_DEPTH)`)
  }
  if (cost.fields > limits.maxFields) {
    throw new errors.QueryTooComplex(`Query selects ${cost.fields} fields (aliases and fragment uses counted); at most ${limits.maxFields} allowed (GRAPHQL_MAX_FIELDS)`)
  }
}

/**
 * The id total of a document with a request's variables, checked against
 * MAX_IDS_PER_REQUEST. Not told which operation runs, it bounds the largest.
 * Plans are worked out once per document: mercurius reuses the parsed
 * document of a repeated query.
 */
export function idLimit (limits: Limits): (document: DocumentNode, variables: Record<string, unknown> | null | undefined) => void {
  const plans = new WeakMap<DocumentNode, IdPlan[]>()
  return function checkIdTotal (document, variables) {
    let documentPlans = plans.get(document)
    if (documentPlans === undefined) {
      const fragments = fragmentsOf(document)
      documentPlans = document.definitions
        .filter((definition): definition is OperationDefinitionNode => definition.kind === Kind.OPERATION_DEFINITION)
        .map((operation) => idPlan(operation, fragments))
      plans.set(document, documentPlans)
    }
    let most = 0
    for (const plan of documentPlans) most = Math.max(most, idsOf(plan, variables ?? {}))
    if (most > limits.maxIds) throw new errors.TooManyIds(most, limits.maxIds)
  }
}

/** Depth, field and id limits of HTTP requests, as mercurius hooks (the WebSocket path: src/graphql/subscriptions.ts). */
export function addGraphqlLimits (app: FastifyInstance, limits: Limits): void {
  app.graphql.addHook('preValidation', async function (_schema, document) {
    checkDocument(document, limits)
  })
  const checkIdTotal = idLimit(limits)
  app.graphql.addHook('preExecution', async function (_schema, document, _context, variables) {
    checkIdTotal(document, variables)
  })
}
