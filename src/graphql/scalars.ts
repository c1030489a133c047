import { GraphQLScalarType } from 'graphql'
import { JSONResolver, SafeIntResolver } from 'graphql-scalars'

/** Epoch milliseconds: graphql-scalars' SafeInt (53-bit) under the schema's own name. */
export const TimestampScalar = new GraphQLScalarType({
  ...SafeIntResolver.toConfig(),
  name: 'Timestamp',
  description: 'Epoch milliseconds as upstream sends them (53-bit safe integer).'
})

export const JSONScalar = JSONResolver
