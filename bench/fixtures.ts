import type { UpstreamTask } from '../src/upstream/types.js'

/** The task every cache-hit request reads: finished, so it stays fresh for the whole run. */
export const HIT_ID = '1730000000000001'

/** A full SUCCESS task as CometAPI sends it, about 1 KB of JSON, for any id. */
export function makeTask (id: string): UpstreamTask {
  return {
    id,
    action: 'IMAGINE',
    status: 'SUCCESS',
    progress: '100%',
    prompt: 'a lighthouse on a cliff at dawn, volumetric light --ar 3:2',
    promptEn: 'a lighthouse on a cliff at dawn, volumetric light --ar 3:2',
    description: 'Submit success',
    failReason: '',
    imageUrl: `https://cdn.example.com/mj/${id}.png`,
    state: '',
    submitTime: 1730000000000,
    startTime: 1730000002000,
    finishTime: 1730000031000,
    properties: { finalPrompt: 'a lighthouse on a cliff at dawn, volumetric light --ar 3:2 --v 6.1', finalZhPrompt: '' },
    buttons: [1, 2, 3, 4].map((n) => ({
      customId: `MJ::JOB::upsample::${n}::6f1ad3a1-4b6e-4c5e-9d1e-0c7f1e2b3a4${n}`,
      emoji: '',
      label: `U${n}`,
      style: 2,
      type: 2
    }))
  }
}

/** Every field of the schema's Task, so GraphQL does the same work on both sides. */
export const TASK_FIELDS = 'id action status progress prompt promptEn description failReason imageUrl state ' +
  'submitTime startTime finishTime properties buttons { customId emoji label style type } final progressPercent'

export const HIT_QUERY = JSON.stringify({ query: `{ task(id: "${HIT_ID}") { ${TASK_FIELDS} } }` })

/** Ten cached tasks: what a dashboard polls. */
export const LIST_IDS: readonly string[] = Array.from({ length: 10 }, (_, i) => String(1730000000000100 + i))

export const LIST_QUERY = JSON.stringify({ query: `{ tasks(ids: ${JSON.stringify(LIST_IDS)}) { ${TASK_FIELDS} } }` })

/** The same list as a client library sends it: a named operation with variables, repeated verbatim. */
export const REPEATED_QUERY = JSON.stringify({
  operationName: 'Poll',
  query: `query Poll($ids: [ID!]!) { tasks(ids: $ids) { ${TASK_FIELDS} } }`,
  variables: { ids: LIST_IDS }
})

/** Every task the anchors serve, by id. */
export function fixtureTasks (): Map<string, UpstreamTask> {
  return new Map([HIT_ID, ...LIST_IDS].map((id) => [id, makeTask(id)]))
}
