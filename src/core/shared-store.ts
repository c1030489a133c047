import type { GatewayError } from '../errors.js'
import type { CacheEntry } from './task-cache.js'

/*
 * The shared tier (L2) as the read path sees it: a port, so the core stays
 * free of Redis. src/shared/redis-store.ts is its adapter.
 */

/**
 * What one id's entry in the shared tier (L2) says, read and, when it is not
 * fresh, leased in the same round trip: a fresh entry; a lease this replica
 * now holds; or a lease another replica holds, for `leaseLeftMs` more. Any
 * older entry comes along as `stale`, for stale-if-error.
 */
export type Acquired =
  | { readonly kind: 'fresh', readonly entry: CacheEntry }
  | { readonly kind: 'claimed', readonly stale: CacheEntry | undefined }
  | { readonly kind: 'held', readonly stale: CacheEntry | undefined, readonly leaseLeftMs: number }

/**
 * One id's outcome of an upstream fetch: written to L2 (entries only), its
 * lease released, and announced to every replica. Neither entry nor error:
 * the lease is given back without an answer (this replica could not ask
 * upstream: its breaker is open or its queue full), and waiters ask again.
 */
export type Landing =
  | { readonly id: string, readonly entry: CacheEntry, readonly keepMs: number, readonly error?: undefined }
  | { readonly id: string, readonly error: GatewayError, readonly entry?: undefined }
  | { readonly id: string, readonly entry?: undefined, readonly error?: undefined }

/**
 * The shared tier as the read path needs it (src/shared/redis-store.ts is
 * the Redis adapter). Every call is bounded by the store's own timeout and
 * may reject: the flight then goes on with L1 and upstream alone.
 */
export interface SharedStore {
  /** False while the store is known to be down: no call is even tried. */
  readonly available: boolean
  /** One round trip for all `ids`: fresh entries, else a lease (`SET NX PX`) or the time left on another's. */
  acquire (partition: string, ids: readonly string[], now: number, leaseMs: number): Promise<Acquired[]>
  /** One round trip: writes the entries, releases this replica's leases on every id, announces them all. */
  settle (partition: string, landings: readonly Landing[]): Promise<void>
  /** Drops an id's entry (a submit just created it: a remembered "unknown" is wrong now). */
  forget (partition: string, id: string): Promise<void>
  /** Announcements from the other replicas. */
  listen (onNotice: (partition: string, landings: readonly Landing[]) => void): void
}
