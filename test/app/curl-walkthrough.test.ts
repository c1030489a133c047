import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { startServer } from '../helpers/server.js'

/**
 * The README's curl walk-through is docs/curl-walkthrough.sh. This test
 * checks that the README shows exactly those commands, then runs each one
 * with the system curl (through /bin/sh, for its quoting) against the real
 * server in demo mode, with only the README's address swapped for the port
 * the server got.
 */

const SCRIPT_PATH = new URL('../../docs/curl-walkthrough.sh', import.meta.url)
const README_PATH = new URL('../../README.md', import.meta.url)
const README_ORIGIN = 'http://127.0.0.1:3000'

/** Shell commands of a script: comments and blank lines dropped, `\` continuations joined. */
function commandsOf (text: string): string[] {
  const out: string[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd()
    if (pending === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) continue
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1)
      continue
    }
    out.push((pending + line).trim())
    pending = ''
  }
  return out
}

/** The first ```sh block after the heading that names the curl walk-through. */
function readmeBlock (readme: string): string | undefined {
  const heading = /^#{1,6} .*curl walk-through.*$/im.exec(readme)
  if (heading === null) return undefined
  return /^```(?:sh|bash|shell)\n([\s\S]*?)^```$/m.exec(readme.slice(heading.index))?.[1]
}

interface Step {
  /** Guards the pairing of expectations with commands. */
  command: RegExp
  check: (t: Test, stdout: string) => void
}

const json = (stdout: string): any => JSON.parse(stdout)

const STEPS: Step[] = [
  { command: /\/healthz$/, check: (t, out) => t.same(json(out), { status: 'ok' }) },
  { command: /\/readyz$/, check: (t, out) => t.strictSame(json(out), { ready: true, breaker: { state: 'closed', retryInMs: 0 } }) },
  {
    command: /\/v1\/tasks\?ids=/,
    check: (t, out) => t.same(json(out).map((task: any) => [task.id, task.status]), [['1700000000000101', 'SUCCESS'], ['1700000120000303', 'FAILURE']])
  },
  {
    command: / -i .*\/v1\/tasks\/1700000000000101$/,
    check: (t, out) => {
      t.match(out, /^HTTP\/1\.1 200 OK\r\n/, 'status line')
      t.match(out, /\r\nx-cache: (hit|miss)\r\n/i, 'x-cache header')
      t.match(json(out.slice(out.indexOf('\r\n\r\n') + 4)), { id: '1700000000000101', status: 'SUCCESS' })
    }
  },
  { command: /-w '%\{http_code\}\\n' .*\/v1\/tasks\/1700000000000999$/, check: (t, out) => t.equal(out, '404\n') },
  {
    command: /\/graphql -H/,
    check: (t, out) => t.same(json(out), { data: { tasks: [{ id: '1700000000000101', status: 'SUCCESS', progress: '100%', final: true }, null] } })
  },
  {
    command: /-G .*\/graphql --data-urlencode/,
    check: (t, out) => t.same(json(out), { data: { task: { id: '1700000120000303', status: 'FAILURE', failReason: '[Invalid parameter] Unrecognized parameter(s): `--foo`' } } })
  },
  {
    command: /\/mj\/task\/list-by-condition/,
    check: (t, out) => t.same(json(out).map((task: any) => task.id).sort(), ['1700000000000101', '1700000180000404'])
  },
  { command: /\/mj\/task\/1700000180000404\/fetch$/, check: (t, out) => t.match(json(out), { id: '1700000180000404', status: 'CANCEL' }) },
  {
    command: / -N .*\/v1\/tasks\/stream\?ids=/,
    check: (t, out) => {
      const events = [...out.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])
      t.same(events, ['task', 'task', 'done'], 'a task event per id, then done')
      t.match(out, /event: done\ndata: \{\}\n\n$/, 'the stream ends with event: done')
    }
  },
  {
    command: /\/mj\/submit\/imagine/,
    check: (t, out) => t.match(json(out), { code: 1, description: 'Submit success', result: /^\d+$/ })
  }
]

const commands = commandsOf(readFileSync(SCRIPT_PATH, 'utf8'))

t.test('the walk-through is plain curl, one expectation per command', async (t) => {
  t.equal(commands.length, STEPS.length, `${commands.length} commands`)
  for (const [i, command] of commands.entries()) {
    t.match(command, /^curl /, `a curl command: ${command}`)
    t.ok(command.includes(README_ORIGIN), 'against the README\'s address')
    t.match(command, STEPS[i]?.command ?? /^$/, `step ${i + 1} is the command its expectation is for`)
  }
})

t.test('the README shows exactly the commands this test runs', async (t) => {
  let readme: string
  try {
    readme = readFileSync(README_PATH, 'utf8')
  } catch {
    t.fail('README.md is missing')
    return
  }
  const block = readmeBlock(readme)
  t.ok(block, 'README.md has a "curl walk-through" heading followed by a ```sh block')
  t.same(commandsOf(block ?? ''), commands, 'the same commands, verbatim and in order')
})

function run (command: string): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', command], { timeout: 15_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

t.test('every walk-through command succeeds against the real server in demo mode', async (t) => {
  const curl = await run('curl --version')
  t.equal(curl.code, 0, 'curl is installed')
  t.comment(curl.stdout.split('\n')[0] ?? '')

  // No COMETAPI_KEY, no COMETAPI_BASE_URL: demo mode on the built-in simulator.
  const { child, url } = await startServer(t, { LOG_LEVEL: 'info' })
  for (const [i, command] of commands.entries()) {
    const local = command.replaceAll(README_ORIGIN, url)
    const { code, stdout, stderr } = await run(local)
    t.equal(code, 0, `exit 0: ${command}${stderr === '' ? '' : `\n${stderr}`}`)
    await t.test(command, async (t) => STEPS[i]?.check(t, stdout))
  }

  child.kill('SIGTERM')
  const [exitCode] = await once(child, 'exit')
  t.equal(exitCode, 0, 'the server exits 0 on SIGTERM')
})
