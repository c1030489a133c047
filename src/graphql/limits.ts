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

/** Options spread into mercurius' registration: batching, the error formatter, introspection per policy. */
export function graphqlSecurityOptions (limits: Limits): Pick<MercuriusOptions, 'allowBatchedQueries' | 'errorFormatter' | 'validationRules'> {
  const validationRules: ValidationRule[] = limits.introspection ? [] : [NoSchemaIntrospectionCustomRule]
  return {
    // JSON arrays of operations, held to the per-request limits as a whole by src/graphql/batch.ts.
    allowBatchedQueries: true,
    errorFormatter: safeErrorFormatter as MercuriusOptions['errorFormatter'],
    validationRules
  }
}

/**
 * Depth and field limits, checked before graphql-js validation (whose
 * overlapping-fields rule is quadratic in the fields of a selection set),
 * and the id total, checked once variables are known.
 */
export function addGraphqlLimits (app: FastifyInstance, limits: Limits): void {
  app.graphql.addHook('preValidation', async function (_schema, document) {
    // mercurius reads a query that does not parse as a JSON-encoded AST (`null` and `1` included);
    // only GraphQL source text is accepted, and parse() alone sets `loc`.
    const parsed = document as DocumentNode | null | undefined
    if (typeof parsed !== 'object' || parsed === null || !(parsed.loc instanceof Location) || !Array.isArray(parsed.definitions)) {
      throw new errors.BadRequest('query must be a GraphQL document')
    }
    const cost = documentCost(document)
    if (cost.depth > limits.maxDepth) {
      throw new errors.QueryTooComplex(`Query is ${cost.depth} levels deep; at most ${limits.maxDepth} allowed (GRAPHQL_MAX_DEPTH)`)
    }
    if (cost.fields > limits.maxFields) {
      throw new errors.QueryTooComplex(`Query selects ${cost.fields} fields (aliases and fragment uses counted); at most ${limits.maxFields} allowed (GRAPHQL_MAX_FIELDS)`)
    }
  })

  // mercurius reuses the parsed document of a repeated query, so its plans are worked out once.
  const plans = new WeakMap<DocumentNode, IdPlan[]>()
  app.graphql.addHook('preExecution', async function (_schema, document, _context, variables) {
    let documentPlans = plans.get(document)
    if (documentPlans === undefined) {
      const fragments = fragmentsOf(document)
      documentPlans = document.definitions
        .filter((definition): definition is OperationDefinitionNode => definition.kind === Kind.OPERATION_DEFINITION)
        .map((operation) => idPlan(operation, fragments))
      plans.set(document, documentPlans)
    }
    // The hook is not told which operation runs: the largest one bounds it.
    let most = 0
    for (const plan of documentPlans) most = Math.max(most, idsOf(plan, variables ?? {}))
    if (most > limits.maxIds) throw new errors.TooManyIds(most, limits.maxIds)
  })
}
