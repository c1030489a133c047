/**
 * Generated SVG "renders": colours and shapes come from a hash of each tile's
 * seed (task id + prompt), so every task looks different and an upscale shows
 * the same picture as the grid tile it came from.
 */
import { sha256 } from '../core/credentials.js'
import { createRng, type Rng } from './rng.js'

export interface ImageInput {
  id: string
  prompt: string
  status: string
  progress: string
  tiles: readonly string[]
}

const SIZE = 512

function escapeXml (s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c)
}

function seedOf (text: string): number {
  return sha256(text).readUInt32BE(0)
}

function tile (seed: string, x: number, y: number, size: number, n: number): string {
  const rng: Rng = createRng(seedOf(seed))
  const hue = Math.floor(rng() * 360)
  const hue2 = (hue + 60 + Math.floor(rng() * 180)) % 360
  const parts = [
    `<defs><linearGradient id="g${n}" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${hue},70%,55%)"/><stop offset="1" stop-color="hsl(${hue2},60%,25%)"/></linearGradient></defs>`,
    `<rect x="${x}" y="${y}" width="${size}" height="${size}" fill="url(#g${n})"/>`
  ]
  const count = 5 + Math.floor(rng() * 5)
  for (let i = 0; i < count; i++) {
    const cx = (x + rng() * size).toFixed(1)
    const cy = (y + rng() * size).toFixed(1)
    const r = (size * (0.05 + rng() * 0.22)).toFixed(1)
    const fill = `hsl(${Math.floor(rng() * 360)},${60 + Math.floor(rng() * 30)}%,${40 + Math.floor(rng() * 40)}%)`
    const opacity = (0.35 + rng() * 0.5).toFixed(2)
    const shape = Math.floor(rng() * 3)
    if (shape === 0) {
      parts.push(`<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fill}" fill-opacity="${opacity}"/>`)
    } else if (shape === 1) {
      const rot = Math.floor(rng() * 90)
      parts.push(`<rect x="${cx}" y="${cy}" width="${r}" height="${r}" fill="${fill}" fill-opacity="${opacity}" transform="rotate(${rot} ${cx} ${cy})"/>`)
    } else {
      const pts = [0, 1, 2].map(() => `${(x + rng() * size).toFixed(1)},${(y + rng() * size).toFixed(1)}`).join(' ')
      parts.push(`<polygon points="${pts}" fill="${fill}" fill-opacity="${opacity}"/>`)
    }
  }
  return parts.join('')
}

/** A 512×512 SVG for a task: a 2×2 grid or a single upscale, with the prompt as a caption. */
export function renderTaskSvg (input: ImageInput): string {
  const grid = input.tiles.length > 1
  const half = SIZE / 2
  const tiles = grid
    ? input.tiles.slice(0, 4).map((s, i) => tile(s, (i % 2) * half, Math.floor(i / 2) * half, half, i)).join('')
    : tile(input.tiles[0] ?? input.id, 0, 0, SIZE, 0)
  const caption = input.prompt.length > 60 ? `${input.prompt.slice(0, 59)}…` : input.prompt
  const finished = input.status === 'SUCCESS'
  // Unfinished renders look blurred, like Midjourney's previews; failures are greyed out.
  const filter = finished
    ? ''
    : input.status === 'IN_PROGRESS' || input.status === 'SUBMITTED' || input.status === 'NOT_START' || input.status === 'MODAL'
      ? '<filter id="f"><feGaussianBlur stdDeviation="12"/></filter>'
      : '<filter id="f"><feColorMatrix type="saturate" values="0"/></filter>'
  const badge = finished ? '' : `<text x="${half}" y="${half}" text-anchor="middle" dominant-baseline="middle" font-family="sans-serif" font-size="48" font-weight="bold" fill="#fff" fill-opacity="0.9">${escapeXml(input.progress !== '' && input.status === 'IN_PROGRESS' ? input.progress : input.status)}</text>`
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}" viewBox="0 0 ${SIZE} ${SIZE}">`,
    `<title>${escapeXml(input.prompt)}</title>`,
    filter === '' ? tiles : `${filter.replace('<filter', '<defs><filter').replace('</filter>', '</filter></defs>')}<g filter="url(#f)">${tiles}</g>`,
    badge,
    `<rect x="0" y="${SIZE - 56}" width="${SIZE}" height="56" fill="#000" fill-opacity="0.55"/>`,
    `<text x="12" y="${SIZE - 32}" font-family="sans-serif" font-size="16" fill="#fff">${escapeXml(caption)}</text>`,
    `<text x="12" y="${SIZE - 12}" font-family="monospace" font-size="12" fill="#ddd">${escapeXml(input.id)} · ${escapeXml(input.status)}</text>`,
    '</svg>'
  ].join('')
}
