import createClient, { type Client } from 'openapi-fetch'
import type { components, paths } from './openapi.js'

export type Task = components['schemas']['Task']
export type GatewayClient = Client<paths>

/** The gateway's key goes in `x-api-key`, only when it runs with GATEWAY_API_KEYS. */
export function gatewayClient (baseUrl: string, apiKey?: string): GatewayClient {
  return createClient<paths>({ baseUrl, headers: apiKey === undefined ? {} : { 'x-api-key': apiKey } })
}

/** Request order, `null` for an unknown id. openapi-fetch sends the array as `ids=a&ids=b`. */
export async function getTasks (gateway: GatewayClient, ids: string[]): Promise<Array<Task | null>> {
  const { data, error, response } = await gateway.GET('/v1/tasks', { params: { query: { ids } } })
  if (error !== undefined) throw new Error(`${response.status} ${error.code}: ${error.message}`)
  return data
}

/** The task, or undefined when upstream has none with this id (404 GW_ERR_TASK_NOT_FOUND). */
export async function getTask (gateway: GatewayClient, id: string): Promise<Task | undefined> {
  const { data, error, response } = await gateway.GET('/v1/tasks/{id}', { params: { path: { id } } })
  if (response.status === 404) return undefined
  if (error !== undefined) throw new Error(`${response.status} ${error.code}: ${error.message}`)
  return data
}

/** As getTasks, with the ids in the body: for lists too long for a URL. */
export async function postTasks (gateway: GatewayClient, ids: string[]): Promise<Array<Task | null>> {
  const { data, error, response } = await gateway.POST('/v1/tasks', { body: { ids } })
  if (error !== undefined) throw new Error(`${response.status} ${error.code}: ${error.message}`)
  return data
}

/** Milliseconds the task took, once it has finished: on /v1/tasks a time is a number or null, never `""`. */
export function durationMs (task: Task): number | null {
  const { startTime, finishTime } = task
  return startTime == null || finishTime == null || startTime === 0 || finishTime === 0 ? null : finishTime - startTime
}
