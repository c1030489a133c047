import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

/*
 * The architecture as the import graph shows it (type imports included):
 * no cycles, a framework-free core, and surfaces that reach upstream only
 * through the task loader.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const IMPORT = /^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm

function modules (dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? modules(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [])
}

/** Module → what it imports: local modules as paths from the root, packages by name. */
function graph (): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const file of modules('src')) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    const deps: string[] = []
    for (const match of text.matchAll(IMPORT)) {
      const spec = (match[1] ?? match[2])!
      deps.push(spec.startsWith('.') ? normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts') : spec)
    }
    out.set(file, deps)
  }
  return out
}

function cycles (g: Map<string, string[]>): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (node: string): void => {
    state.set(node, 'open')
    stack.push(node)
    for (const dep of g.get(node) ?? []) {
      if (!g.has(dep)) continue
      if (state.get(dep) === 'open') found.push([...stack.slice(stack.indexOf(dep)), dep])
      else if (state.get(dep) === undefined) visit(dep)
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const node of g.keys()) if (state.get(node) === undefined) visit(node)
  return found
}

const g = graph()

t.test('src/ has no import cycle, type imports included', async (t) => {
  t.ok(g.size > 40, `read ${g.size} modules`)
  t.strictSame(cycles(g).map((c) => c.join(' -> ')), [])
})

t.test('the core imports no web framework', async (t) => {
  const framework = /^(fastify|fastify-plugin|mercurius|@fastify\/(?!error$).+)$/
  const offenders: string[] = []
  for (const [file, deps] of g) {
    if (!file.startsWith('src/core/')) continue
    for (const dep of deps) if (framework.test(dep)) offenders.push(`${file} imports ${dep}`)
  }
  t.ok([...g.keys()].filter((f) => f.startsWith('src/core/')).length >= 8, 'the core has its modules')
  t.strictSame(offenders, [])
})

t.test('routes and resolvers never import the upstream client, the cache or the batcher', async (t) => {
  const forbidden = new Set(['src/upstream/client.ts', 'src/upstream/fetch-tasks.ts', 'src/core/task-cache.ts', 'src/core/batcher.ts'])
  const offenders: string[] = []
  for (const [file, deps] of g) {
    if (!file.startsWith('src/routes/') && !file.startsWith('src/graphql/')) continue
    for (const dep of deps) if (forbidden.has(dep)) offenders.push(`${file} imports ${relative('src', dep)}`)
  }
  t.strictSame(offenders, [])
})

t.test('the test tree mirrors src/: every test folder is a src/ folder (or app/, bench/, helpers/ and the ignored artifacts/)', async (t) => {
  const srcFolders = new Set(readdirSync(join(ROOT, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name))
  const extra: string[] = []
  for (const entry of readdirSync(join(ROOT, 'test'), { withFileTypes: true })) {
    if (entry.isDirectory() && !srcFolders.has(entry.name) && !['app', 'bench', 'helpers', 'artifacts'].includes(entry.name)) extra.push(entry.name)
  }
  t.strictSame(extra, [])
})
