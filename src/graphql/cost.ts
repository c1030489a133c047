import {
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode
} from 'graphql'

/*
 * Pure counting over a parsed document, as mercurius's lib/queryDepth.js:
 * no hooks, no errors, no options. src/graphql/limits.ts decides what is too much.
 */

export interface Cost { fields: number, depth: number }

/**
 * Fields and depth of a selection set as it executes: every alias is a field,
 * every use of a fragment counts its fields again (so fragments cannot
 * multiply work unseen), and a fragment adds no depth of its own (as
 * mercurius' `queryDepth`). Fragment costs are memoized, so this is linear in
 * the document. A fragment cycle costs nothing here; validation rejects it.
 */
function selectionCost (set: SelectionSetNode | undefined, fragments: Map<string, FragmentDefinitionNode>, memo: Map<string, Cost>, visiting: Set<string>): Cost {
  const cost: Cost = { fields: 0, depth: 0 }
  if (set === undefined) return cost
  for (const selection of set.selections) {
    let inner: Cost
    if (selection.kind === Kind.FIELD) {
      const child = selectionCost(selection.selectionSet, fragments, memo, visiting)
      inner = { fields: 1 + child.fields, depth: 1 + child.depth }
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      inner = selectionCost(selection.selectionSet, fragments, memo, visiting)
    } else {
      const name = selection.name.value
      const fragment = fragments.get(name)
      let known = memo.get(name)
      if (known === undefined && fragment !== undefined && !visiting.has(name)) {
        visiting.add(name)
        known = selectionCost(fragment.selectionSet, fragments, memo, visiting)
        visiting.delete(name)
        memo.set(name, known)
      }
      inner = known ?? { fields: 0, depth: 0 }
    }
    cost.fields += inner.fields
    cost.depth = Math.max(cost.depth, inner.depth)
  }
  return cost
}

export function fragmentsOf (document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>()
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition)
  }
  return fragments
}

/** Field nodes as written, unused fragments included: what validation itself walks. */
function writtenFields (document: DocumentNode): number {
  let count = 0
  const walk = (set: SelectionSetNode | undefined): void => {
    if (set === undefined) return
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) count++
      if (selection.kind !== Kind.FRAGMENT_SPREAD) walk(selection.selectionSet)
    }
  }
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION || definition.kind === Kind.FRAGMENT_DEFINITION) walk(definition.selectionSet)
  }
  return count
}

/**
 * The cost of a parsed document: the most fields of all its operations
 * together (or as written, if more) and the deepest selection.
 */
export function documentCost (document: DocumentNode): Cost {
  const fragments = fragmentsOf(document)
  const memo = new Map<string, Cost>()
  const total: Cost = { fields: 0, depth: 0 }
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue
    const cost = selectionCost(definition.selectionSet, fragments, memo, new Set())
    total.fields += cost.fields
    total.depth = Math.max(total.depth, cost.depth)
  }
  total.fields = Math.max(total.fields, writtenFields(document))
  return total
}

/**
 * What the `ids:` (or `id:`) arguments of one operation stand for: ids
 * written in the document, plus variables whose size only a request tells,
 * each with the size of its default value for when the request omits it.
 */
export interface IdPlan {
  readonly literal: number
  readonly variables: ReadonlyArray<{ readonly name: string, readonly byDefault: number }>
}

/** Root fields that take task ids, in `ids:` or `id:`. */
const ID_FIELDS: ReadonlySet<string> = new Set(['tasks', 'task', 'taskUpdates'])

/** Ids a written value stands for: each item of a list, and a single value (coerced to a list of one). */
function literalIds (value: ValueNode): number {
  if (value.kind === Kind.LIST) return value.values.reduce((n, item) => n + (item.kind === Kind.NULL ? 0 : 1), 0)
  return value.kind === Kind.NULL ? 0 : 1
}

/**
 * The plan of one operation across all its root `tasks`, `task` and `taskUpdates` fields,
 * aliases and fragments included: the resolver checks each field against
 * MAX_IDS_PER_REQUEST, this checks their sum, so a thousand aliased fields
 * cannot fan out a thousand times the limit. Ids count however they are
 * written: in the document, in a variable, or in a variable's default.
 */
export function idPlan (operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): IdPlan {
  const defaults = new Map<string, number>()
  for (const definition of operation.variableDefinitions ?? []) {
    defaults.set(definition.variable.name.value, definition.defaultValue === undefined ? 0 : literalIds(definition.defaultValue))
  }
  let literal = 0
  const variables: Array<{ name: string, byDefault: number }> = []
  const seen = new Set<string>()
  const count = (value: ValueNode): void => {
    if (value.kind === Kind.VARIABLE) variables.push({ name: value.name.value, byDefault: defaults.get(value.name.value) ?? 0 })
    else literal += literalIds(value)
  }
  const walk = (set: SelectionSetNode): void => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (!ID_FIELDS.has(selection.name.value)) continue
        for (const arg of selection.arguments ?? []) {
          if (arg.name.value === 'ids' || arg.name.value === 'id') count(arg.value)
        }
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.selectionSet)
      } else {
        const fragment = fragments.get(selection.name.value)
        // Repeated spreads of one fragment are merged by execution: counted once.
        if (fragment !== undefined && !seen.has(fragment.name.value)) {
          seen.add(fragment.name.value)
          walk(fragment.selectionSet)
        }
      }
    }
  }
  walk(operation.selectionSet)
  return { literal, variables }
}

/** The ids a plan stands for with a request's variables: a given variable (null included) replaces its default. */
export function idsOf (plan: IdPlan, variables: Record<string, unknown>): number {
  let n = plan.literal
  for (const { name, byDefault } of plan.variables) {
    if (!Object.hasOwn(variables, name)) {
      n += byDefault
      continue
    }
    const given = variables[name]
    n += Array.isArray(given) ? given.length : given == null ? 0 : 1
  }
  return n
}
