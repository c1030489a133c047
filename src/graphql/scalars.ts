import type { GraphQLScalarType } from 'graphql'
import { JSONResolver, SafeIntResolver } from 'graphql-scalars'

/**
 * A scalar's behaviour only: how values are serialized and parsed. mercurius
 * copies every property of a scalar resolver onto the schema's own type, so a
 * whole GraphQLScalarType would also replace the description (and add a
 * `specifiedByURL`) that schema/schema.graphql gives it.
 */
// A type alias, not an interface: mercurius' IResolvers wants an index signature.
export type ScalarBehaviour = Readonly<Pick<GraphQLScalarType, 'serialize' | 'parseValue' | 'parseLiteral'>>

function behaviour (type: GraphQLScalarType): ScalarBehaviour {
  return Object.freeze({ serialize: type.serialize, parseValue: type.parseValue, parseLiteral: type.parseLiteral })
}

/** Epoch milliseconds: graphql-scalars' SafeInt (53-bit). */
export const TimestampScalar = behaviour(SafeIntResolver)

/** Any JSON value: graphql-scalars' JSON. */
export const JSONScalar = behaviour(JSONResolver)
