/** Small seeded PRNG (mulberry32): deterministic ids and uuids for a given seed. */
export type Rng = () => number

export function createRng (seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A v4-shaped uuid drawn from `rng` (Discord message hashes look like this in customIds). */
export function rngUuid (rng: Rng): string {
  let hex = ''
  for (let i = 0; i < 32; i++) hex += Math.floor(rng() * 16).toString(16)
  const variant = (8 + Math.floor(rng() * 4)).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}
