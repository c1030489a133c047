/**
 * Submissions as pure functions: check a submit body, decide new-api's answer
 * to it, and describe the task it creates. Reading the clock, drawing ids and
 * storing the task are left to the caller, so these can be tested on plain data.
 *
 * Refusals follow new-api: its own checks answer HTTP 400 (`relayError`),
 * proxy-level refusals answer HTTP 200 with a submit code other than 1.
 */
import { sha256 } from '../core/credentials.js'
import type { UpstreamErrorBody, UpstreamSubmitResult } from '../upstream/types.js'
import { buttonDefs, phaseAt, type Layout, type StoredTask, type TaskDraft } from './tasks.js'
import { relayError, submitted, type Answer } from './wire.js'

/** Body of `sim.createTask` (an imagine submission). */
export interface ImagineInput {
  prompt: string
  base64Array?: string[]
  botType?: string
  notifyHook?: string
  state?: string
}

/** Thrown by `sim.createTask` when the submission is refused; carries the upstream answer. */
export class SimulatorSubmitError extends Error {
  constructor (readonly status: number, readonly body: UpstreamSubmitResult | UpstreamErrorBody) {
    super(`simulator refused the submission: HTTP ${status} ${JSON.stringify(body)}`)
    this.name = 'SimulatorSubmitError'
  }
}

/** What a submission is decided against. */
export interface SubmitContext {
  /** Simulator clock at the submission. */
  readonly now: number
  readonly durationMs: number
  readonly bannedWords: readonly string[]
  readonly failWords: readonly string[]
  /** The submitter's own task with this id; unknown and foreign ids give undefined. */
  readonly ownedTask: (id: string) => StoredTask | undefined
}

/** The task an accepted submission creates, before it has an id. */
export interface TaskPlan {
  readonly action: string
  readonly prompt: string
  readonly state: string
  readonly layout: Layout
  /** Image seeds; omitted = a fresh grid of four derived from the new id. */
  readonly tiles?: readonly string[]
  readonly parentId: string | null
  /** Set when the new task waits in MODAL for /mj/submit/modal. */
  readonly modalAction?: string
}

export type Decision =
  | { readonly accepted: false, readonly answer: Answer }
  | { readonly accepted: true, readonly plan: TaskPlan }

/** What the caller draws for a new task: its id, its button hash and its owner's key. */
export interface NewTaskIds {
  readonly id: string
  readonly hash: string
  readonly owner: string
}

/** Go's bind failed: a field has the wrong JSON type. */
function bindFailed (): Decision {
  return refuse(relayError('bind_request_body_failed'))
}

function refuse (answer: Answer): Decision {
  return { accepted: false, answer }
}

function accept (plan: TaskPlan): Decision {
  return { accepted: true, plan }
}

/** An image as submits carry it: `data:<type>;base64,<data>`. */
const DATA_URL = /^data:[\w.+-]+\/[\w.+-]+;base64,[A-Za-z0-9+/=\s]+$/
const BOT_TYPES: readonly string[] = ['MID_JOURNEY', 'NIJI_JOURNEY']
const BLEND_DIMENSIONS: readonly string[] = ['PORTRAIT', 'SQUARE', 'LANDSCAPE']

function optString (v: unknown): v is string | undefined | null {
  return v === undefined || v === null || typeof v === 'string'
}

function isEmpty (v: string | undefined | null): v is '' | undefined | null {
  return v === undefined || v === null || v === ''
}

function matchWord (prompt: string, words: readonly string[]): string | undefined {
  const p = prompt.toLowerCase()
  return words.find((w) => p.includes(w))
}

function bannedAnswer (prompt: string, ctx: SubmitContext): Answer | undefined {
  const word = matchWord(prompt, ctx.bannedWords)
  if (word === undefined) return undefined
  return submitted(24, 'May contain banned words', null, { promptEn: prompt, bannedWord: word })
}

function botTypeRefusal (botType: string | undefined | null): Answer | undefined {
  return isEmpty(botType) || BOT_TYPES.includes(botType) ? undefined : submitted(4, 'botType must be MID_JOURNEY or NIJI_JOURNEY', null)
}

function optStringArray (v: unknown): v is string[] | undefined | null {
  return v === undefined || v === null || (Array.isArray(v) && v.every((s) => typeof s === 'string'))
}

/** POST /mj/submit/imagine. */
export function decideImagine (body: Record<string, unknown>, ctx: SubmitContext): Decision {
  const { prompt, base64Array, botType, notifyHook, state } = body
  if (!optString(prompt) || !optString(botType) || !optString(notifyHook) || !optString(state)) return bindFailed()
  if (base64Array !== undefined && base64Array !== null && (!Array.isArray(base64Array) || !base64Array.every((s) => typeof s === 'string'))) {
    return bindFailed()
  }
  if (prompt === undefined || prompt === null || prompt.trim() === '') return refuse(relayError('prompt_is_required'))
  if (Array.isArray(base64Array) && !base64Array.every((s: string) => DATA_URL.test(s))) {
    return refuse(submitted(4, 'base64 format error', null))
  }
  const badBot = botTypeRefusal(botType)
  if (badBot !== undefined) return refuse(badBot)
  const banned = bannedAnswer(prompt, ctx)
  if (banned !== undefined) return refuse(banned)
  return accept({ action: 'IMAGINE', prompt, state: state ?? '', layout: 'grid', parentId: null })
}

/** POST /mj/submit/action: press one of a finished task's buttons. */
export function decideAction (body: Record<string, unknown>, ctx: SubmitContext): Decision {
  const { taskId, customId, state, notifyHook } = body
  if (!optString(taskId) || !optString(customId) || !optString(state) || !optString(notifyHook)) return bindFailed()
  if (isEmpty(customId)) return refuse(relayError('custom_id_is_required'))
  const parts = customId.split('::')
  if (parts.length < 3 || parts[0] !== 'MJ' || parts[1] === '') return refuse(relayError('unknown_action'))
  if (isEmpty(taskId)) return refuse(relayError('task_id_is_required'))
  const parent = ctx.ownedTask(taskId)
  if (parent === undefined) return refuse(relayError('task_not_found'))
  if (phaseAt(parent, ctx.now).status !== 'SUCCESS') return refuse(relayError('task_status_not_success'))
  const button = buttonDefs(parent).find((b) => b.customId === customId)
  if (button === undefined) return refuse(submitted(4, 'Invalid customId: no such button on the task', null))
  const single = button.action === 'UPSCALE' || button.modal
  return accept({
    action: button.action,
    prompt: parent.prompt,
    state: state ?? '',
    layout: single ? 'single' : 'grid',
    // An upscale shows the grid tile it came from; modal tasks keep the parent's picture.
    tiles: button.action === 'UPSCALE' && parent.layout === 'grid' ? [parent.tiles[button.index - 1] ?? parent.id] : single ? parent.tiles : undefined,
    parentId: parent.id,
    ...(button.modal ? { modalAction: button.action } : {})
  })
}

/** POST /mj/submit/modal: confirm a task waiting in MODAL. */
export function decideModal (body: Record<string, unknown>, ctx: SubmitContext): Decision {
  const { taskId, prompt, maskBase64 } = body
  if (!optString(taskId) || !optString(prompt) || !optString(maskBase64)) return bindFailed()
  if (isEmpty(taskId)) return refuse(relayError('task_id_is_required'))
  const parent = ctx.ownedTask(taskId)
  if (parent === undefined) return refuse(relayError('task_not_found'))
  if (phaseAt(parent, ctx.now).status !== 'MODAL') return refuse(submitted(4, 'Task status error: the task is not waiting in MODAL', null))
  if (parent.modalAction === 'INPAINT' && isEmpty(maskBase64)) return refuse(submitted(4, "maskBase64 can't be empty", null))
  const finalPrompt = prompt === undefined || prompt === null || prompt.trim() === '' ? parent.prompt : prompt
  const banned = bannedAnswer(finalPrompt, ctx)
  if (banned !== undefined) return refuse(banned)
  // new-api records a modal submission as its own task with action MODAL.
  return accept({ action: 'MODAL', prompt: finalPrompt, state: parent.state, layout: 'grid', parentId: parent.id })
}

/** Four prompts "read" from an image, derived from its bytes so the same image always reads the same. */
function describePrompts (source: string): string {
  const subjects = ['a lighthouse on a cliff', 'a fox in fresh snow', 'a quiet harbour town', 'a field of sunflowers', 'a neon city street', 'an old oak tree']
  const styles = ['watercolor', 'oil painting', 'digital art', 'studio photograph', 'ink sketch', 'isometric render']
  const seed = sha256(source)
  return [0, 1, 2, 3].map((n) => `${n + 1}️⃣ ${subjects[seed[n]! % subjects.length]}, ${styles[seed[n + 4]! % styles.length]} --ar 1:1`).join('\n\n')
}

/** POST /mj/submit/describe: an image (`base64` data URL, or a `link`) read back as four prompts. */
export function decideDescribe (body: Record<string, unknown>, _ctx: SubmitContext): Decision {
  const { base64, link, botType, notifyHook, state } = body
  if (!optString(base64) || !optString(link) || !optString(botType) || !optString(notifyHook) || !optString(state)) return bindFailed()
  if (isEmpty(base64) && isEmpty(link)) return refuse(relayError('base64_is_required'))
  if (!isEmpty(base64) && !DATA_URL.test(base64)) return refuse(submitted(4, 'base64 format error', null))
  if (!isEmpty(link) && !/^https?:\/\/\S+$/.test(link)) return refuse(submitted(4, 'link must be an http(s) URL', null))
  const badBot = botTypeRefusal(botType)
  if (badBot !== undefined) return refuse(badBot)
  const source = isEmpty(base64) ? link as string : base64
  return accept({ action: 'DESCRIBE', prompt: describePrompts(source), state: state ?? '', layout: 'text', tiles: [source.slice(0, 256)], parentId: null })
}

/** POST /mj/submit/blend: two to five images blended into a grid. */
export function decideBlend (body: Record<string, unknown>, _ctx: SubmitContext): Decision {
  const { base64Array, dimensions, botType, notifyHook, state } = body
  if (!optStringArray(base64Array) || !optString(dimensions) || !optString(botType) || !optString(notifyHook) || !optString(state)) return bindFailed()
  if (base64Array === undefined || base64Array === null || base64Array.length === 0) return refuse(relayError('base64_array_is_required'))
  if (base64Array.length < 2 || base64Array.length > 5) return refuse(submitted(4, 'base64Array must hold 2 to 5 images', null))
  if (!base64Array.every((s) => DATA_URL.test(s))) return refuse(submitted(4, 'base64 format error', null))
  if (!isEmpty(dimensions) && !BLEND_DIMENSIONS.includes(dimensions)) return refuse(submitted(4, 'dimensions must be PORTRAIT, SQUARE or LANDSCAPE', null))
  const badBot = botTypeRefusal(botType)
  if (badBot !== undefined) return refuse(badBot)
  return accept({ action: 'BLEND', prompt: '', state: state ?? '', layout: 'grid', parentId: null })
}

/** The answer to an accepted submission once its task exists under `id`. */
export function acceptedAnswer (plan: TaskPlan, id: string): Answer {
  // Proxies answer 21 for buttons that open a modal; new-api passes 21 through only for those.
  return plan.modalAction !== undefined
    ? submitted(21, 'Waiting for window confirm', id, { finalPrompt: plan.prompt, remix: true })
    : submitted(1, 'Submit success', id, { discordInstanceId: 'simulator', discordChannelId: 'simulator' })
}

/** The stored form of a planned task; its timeline is 10% queued, 10% submitted, 80% rendering. */
export function buildDraft (plan: TaskPlan, ids: NewTaskIds, ctx: Pick<SubmitContext, 'now' | 'durationMs' | 'failWords'>): TaskDraft {
  const t = ctx.now
  const d = ctx.durationMs
  const runAt = t + Math.round(d * 0.2)
  const doneAt = t + d
  const failWord = matchWord(plan.prompt, ctx.failWords)
  const draft: TaskDraft = {
    id: ids.id,
    owner: ids.owner,
    action: plan.action,
    prompt: plan.prompt,
    promptEn: plan.prompt,
    description: 'Submit success',
    state: plan.state,
    hash: ids.hash,
    layout: plan.layout,
    tiles: plan.tiles ?? [1, 2, 3, 4].map((n) => `${ids.id}|${plan.prompt}|${n}`),
    parentId: plan.parentId,
    modalAction: plan.modalAction ?? null,
    submitTime: t,
    startAt: t + Math.round(d * 0.1),
    runAt,
    doneAt,
    endAt: failWord === undefined ? doneAt : runAt + Math.round((doneAt - runAt) / 2),
    outcome: failWord === undefined ? 'SUCCESS' : 'FAILURE',
    failReason: failWord === undefined ? '' : `Simulated failure: the prompt contains "${failWord}"`,
    frozen: false
  }
  // A modal task waits for /mj/submit/modal; it does not render.
  return plan.modalAction === undefined ? draft : { ...draft, outcome: 'MODAL', endAt: t, failReason: '' }
}
