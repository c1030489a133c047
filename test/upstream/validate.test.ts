import t from 'tap'
import { MAX_TASK_DEPTH, parseTaskList } from '../../src/upstream/validate.js'

/** `{"id": id, "properties": {"a": {"a": ... 1}}}` with `levels` objects under properties, as upstream's bytes. */
function nestedTask (id: string, levels: number): unknown {
  return JSON.parse(`{"id":${JSON.stringify(id)},"status":"IN_PROGRESS","properties":${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}}`)
}

t.test('a task nested 5000 deep fails that id alone; the ids around it are served', async (t) => {
  const body = [{ id: 'before', status: 'SUCCESS' }, nestedTask('deep', 5000), { id: 'after', status: 'IN_PROGRESS' }]
  const list = parseTaskList(body, new Set(['before', 'deep', 'after']))
  t.strictSame([...list.tasks.keys()], ['before', 'after'])
  t.strictSame([...list.invalid.entries()], [['deep', `task deep: nested deeper than ${MAX_TASK_DEPTH} levels`]])
})

t.test('the depth bound counts the task itself, objects and arrays; a task at the bound passes', async (t) => {
  // The task is level 1 and `properties` level 2: levels - 1 objects under it reach the bound exactly.
  const atBound = parseTaskList([nestedTask('x', MAX_TASK_DEPTH - 1)], new Set(['x']))
  t.strictSame([...atBound.tasks.keys()], ['x'], `${MAX_TASK_DEPTH} levels pass`)
  const over = parseTaskList([nestedTask('x', MAX_TASK_DEPTH)], new Set(['x']))
  t.strictSame([...over.invalid.keys()], ['x'], `${MAX_TASK_DEPTH + 1} levels fail`)

  const arrays = JSON.parse(`{"id":"y","videoUrls":${'['.repeat(MAX_TASK_DEPTH)}${']'.repeat(MAX_TASK_DEPTH)}}`)
  t.strictSame([...parseTaskList([arrays], new Set(['y'])).invalid.keys()], ['y'], 'nested arrays in an extra field count too')
  const wide = { id: 'z', properties: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, { v: i }])) }
  t.strictSame([...parseTaskList([wide], new Set(['z'])).tasks.keys()], ['z'], 'width is not depth')
})

t.test('the depth check itself cannot overflow the stack, however deep the body', async (t) => {
  const list = parseTaskList([nestedTask('deep', 1_000_000)], new Set(['deep']))
  t.strictSame([...list.invalid.keys()], ['deep'])
})

t.test('an unrequested deep entry is ignored like any unrequested entry', async (t) => {
  const list = parseTaskList([nestedTask('stray', 5000), { id: 'mine' }], new Set(['mine']))
  t.strictSame([...list.tasks.keys()], ['mine'])
  t.equal(list.invalid.size, 0)
  t.equal(list.unrequested, 1)
})
