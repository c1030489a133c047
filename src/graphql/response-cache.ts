import { LRUCache } from 'lru-cache'
import { Kind, type DocumentNode } from 'graphql'
import type { FastifyReply, FastifyRequest, onSendHookHandler, preHandlerHookHandler, RouteOptions } from 'fastify'
import type { Lookup, LookupEntry as CacheEntry } from '../core/task-loader.js'

/**
 * Answers a repeated GraphQL query without executing it. Frontends poll the
 * same operation with the same variables; when every task it read is still
 * the task cache's fresh entry, the response body is the same bytes as last
 * time, so parse, validation, execution and serialization are all skipped.
 *
 * A response is kept only when it is a query that read at least one task,
 * every lookup was a fresh cache entry (no error, nothing stale, cache on),
 * and the execution had no errors. It is valid until the earliest freshness of
 * the tasks it read, and only while each of them is still the very entry it
 * was built from: a changed task is a new entry object, so one identity check
 * per task drops the response. The key carries the partition, so tenants never
 * share a response, and the media type the client asked for.
 */

interface Dependency {
  readonly id: string
  readonly entry: CacheEntry
}

interface CachedResponse {
  readonly body: string
  readonly type: string
  /** Whose tasks: a partition, never a credential. */
  readonly partition: string
  readonly dependencies: readonly Dependency[]
  readonly validUntil: number
}

/** What one execution read, collected by the resolvers. */
interface Collector {
  readonly key: string
  readonly dependencies: Dependency[]
  validUntil: number
  cacheable: boolean
  query: boolean
}

const kCollector = Symbol('graphql response dependencies')

/** The response cache's bound in bytes of bodies, whatever GRAPHQL_RESPONSE_CACHE_MAX_ENTRIES says. */
export const RESPONSE_CACHE_MAX_BYTES = 16 << 20

type CollectingRequest = FastifyRequest & { [kCollector]?: Collector }

export interface ResponseCacheOptions {
  maxEntries: number
  maxBytes: number
  now: () => number
  isCurrent: (partition: string, id: string, entry: CacheEntry, now: number) => boolean
}

/** The request's operation as a key, or undefined when it is not one that can be reused (a batch, no query text). */
function keyOf (request: FastifyRequest, partition: string): string | undefined {
  const source = (request.method === 'GET' ? request.query : request.body) as { query?: unknown, operationName?: unknown, variables?: unknown } | null
  if (source === null || typeof source !== 'object' || Array.isArray(source) || typeof source.query !== 'string') return undefined
  const variables = typeof source.variables === 'string' ? source.variables : JSON.stringify(source.variables ?? null)
  const accept = request.headers.accept ?? ''
  return `${partition}\0${accept}\0${typeof source.operationName === 'string' ? source.operationName : ''}\0${variables}\0${source.query}`
}

/** The request's partition; undefined when it has none (no pass-through credential), which execution reports in GraphQL's shape. */
function requestPartition (request: FastifyRequest): string | undefined {
  try {
    return request.scope.partition
  } catch {
    return undefined
  }
}

/** Called by the resolvers for every lookup they answer from. */
export function noteLookup (request: FastifyRequest, id: string, lookup: Lookup): void {
  const collector = (request as CollectingRequest)[kCollector]
  if (collector === undefined || !collector.cacheable) return
  if (lookup.error !== undefined || lookup.cache === 'stale' || lookup.entry === undefined) {
    collector.cacheable = false
    return
  }
  collector.dependencies.push({ id, entry: lookup.entry })
  if (lookup.entry.freshUntil < collector.validUntil) collector.validUntil = lookup.entry.freshUntil
}

/** True when every operation of the document is a query: mutations and subscriptions are never reused. */
export function onlyQueries (document: DocumentNode): boolean {
  return document.definitions.every((definition) => definition.kind !== Kind.OPERATION_DEFINITION || definition.operation === 'query')
}

export class ResponseCache {
  readonly #lru: LRUCache<string, CachedResponse>
  readonly #opts: Readonly<ResponseCacheOptions>

  constructor (opts: ResponseCacheOptions) {
    for (const key of ['maxEntries', 'maxBytes'] as const) {
      if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new RangeError(`ResponseCache: ${key} must be a positive integer, got ${String(opts[key])}`)
    }
    this.#opts = Object.freeze({ ...opts })
    this.#lru = new LRUCache({ max: opts.maxEntries, maxSize: opts.maxBytes, sizeCalculation: (r) => r.body.length + 64 })
  }

  get size (): number { return this.#lru.size }

  /** The stored response for the request, if it is still valid; otherwise starts collecting for it. */
  lookup (request: FastifyRequest, partition: string): CachedResponse | undefined {
    const key = keyOf(request, partition)
    if (key === undefined) return undefined
    const hit = this.#lru.get(key)
    if (hit !== undefined) {
      if (this.#valid(hit)) return hit
      this.#lru.delete(key)
    }
    ;(request as CollectingRequest)[kCollector] = { key, dependencies: [], validUntil: Infinity, cacheable: true, query: false }
    return undefined
  }

  /** Marks what preExecution learned of the operation. */
  executing (request: FastifyRequest, document: DocumentNode): void {
    const collector = (request as CollectingRequest)[kCollector]
    if (collector !== undefined) collector.query = onlyQueries(document)
  }

  /** An execution with errors is never reused, whatever it read. */
  failed (request: FastifyRequest): void {
    const collector = (request as CollectingRequest)[kCollector]
    if (collector !== undefined) collector.cacheable = false
  }

  /** Keeps the serialized body of a reusable response. */
  store (request: FastifyRequest, reply: FastifyReply, partition: string, payload: unknown): void {
    const collector = (request as CollectingRequest)[kCollector]
    if (collector === undefined || !collector.cacheable || !collector.query || collector.dependencies.length === 0) return
    if (reply.statusCode !== 200 || typeof payload !== 'string') return
    const type = reply.getHeader('content-type')
    if (typeof type !== 'string') return
    const response: CachedResponse = { body: payload, type, partition, dependencies: collector.dependencies, validUntil: collector.validUntil }
    if (this.#valid(response)) this.#lru.set(collector.key, response)
  }

  #valid (response: CachedResponse): boolean {
    const now = this.#opts.now()
    if (now >= response.validUntil) return false
    for (const { id, entry } of response.dependencies) {
      if (!this.#opts.isCurrent(response.partition, id, entry, now)) return false
    }
    return true
  }
}

/**
 * An onRoute hook for mercurius's /graphql routes: a valid stored response is
 * sent from preHandler, before the body reaches mercurius; any other response
 * is offered to the cache in onSend, once serialized. Both run after the
 * onRequest hooks, so auth and the rate limit apply to reused responses too.
 */
export function reuseResponses (path: string, cache: ResponseCache) {
  return function (route: RouteOptions): void {
    if (route.url !== path || (route.method !== 'GET' && route.method !== 'POST')) return
    const preHandler: preHandlerHookHandler = function (request, reply, done) {
      const partition = requestPartition(request)
      const hit = partition === undefined ? undefined : cache.lookup(request, partition)
      if (hit === undefined) { done(); return }
      reply.type(hit.type).send(hit.body)
    }
    const onSend: onSendHookHandler = function (request, reply, payload, done) {
      const partition = requestPartition(request)
      if (partition !== undefined) cache.store(request, reply, partition, payload)
      done(null, payload)
    }
    route.preHandler = [...[route.preHandler ?? []].flat(), preHandler]
    route.onSend = [...[route.onSend ?? []].flat(), onSend]
  }
}
