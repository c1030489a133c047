/**
 * Task storage and the clock-driven lifecycle. A stored task is immutable: it
 * holds its planned timeline, and `phaseAt(task, t)` derives status/progress
 * from the clock at read time, so no timers run and a fake clock just works.
 */
import type { UpstreamButton, UpstreamTask } from '../upstream/types.js'
import type { Rng } from './rng.js'

/** new-api marks a task unfinished after one hour as FAILURE. */
export const TASK_TIMEOUT_MS = 3_600_000
const TIMEOUT_REASON = 'Upstream task timeout (over 1 hour)'
/** Progress values the proxy reports while a job renders. */
const PROGRESS_STEPS = [15, 31, 46, 62, 77, 93] as const

export type Outcome = 'SUCCESS' | 'FAILURE' | 'CANCEL' | 'MODAL'
/** `text`: a DESCRIBE task, whose result is its prompts; it has no buttons. */
export type Layout = 'grid' | 'single' | 'text'

export interface StoredTask {
  readonly seq: number
  readonly id: string
  /** Raw key of the submitter; it never leaves the simulator instance. */
  readonly owner: string
  readonly action: string
  readonly prompt: string
  readonly promptEn: string
  readonly description: string
  readonly state: string
  readonly submitTime: number
  /** SUBMITTED from here (also the task's startTime). */
  readonly startAt: number
  /** IN_PROGRESS from here. */
  readonly runAt: number
  /** When a successful render reaches 100%; progress is measured against it. */
  readonly doneAt: number
  /** When `outcome` takes over (doneAt for success, earlier for a mid-way failure). */
  readonly endAt: number
  readonly outcome: Outcome
  readonly failReason: string
  /** Stable seeds: always `outcome`, whatever the clock says. */
  readonly frozen: boolean
  /** Discord-style message hash shared by all of the task's buttons. */
  readonly hash: string
  readonly layout: Layout
  /** Image seeds, one per tile (4 for a grid, 1 for an upscale). */
  readonly tiles: readonly string[]
  /** For a task waiting in MODAL: the action a modal submit will run. */
  readonly modalAction: string | null
  readonly parentId: string | null
}

export type TaskDraft = Omit<StoredTask, 'seq'>

export interface Phase {
  status: string
  progress: string
  startTime: number
  finishTime: number
  failReason: string
}

export interface ButtonDef {
  customId: string
  emoji: string
  label: string
  style: number
  type: number
  /** Action of the follow-up task the button creates. */
  action: string
  /** Opens a modal (task waits in MODAL; submit answers code 21). */
  modal: boolean
  /** For UPSCALE: which grid tile is upscaled. */
  index: number
}

function btn (customId: string, label: string, emoji: string, action: string, index = 0, modal = false, style = 2): ButtonDef {
  return { customId, emoji, label, style, type: 2, action, modal, index }
}

/** The buttons a finished task offers, in Discord's order. */
export function buttonDefs (task: StoredTask): ButtonDef[] {
  const h = task.hash
  if (task.layout === 'text') return []
  if (task.layout === 'grid') {
    const out: ButtonDef[] = []
    for (let n = 1; n <= 4; n++) out.push(btn(`MJ::JOB::upsample::${n}::${h}`, `U${n}`, '', 'UPSCALE', n))
    out.push(btn(`MJ::JOB::reroll::0::${h}::SOLO`, '', '🔄', 'REROLL'))
    for (let n = 1; n <= 4; n++) out.push(btn(`MJ::JOB::variation::${n}::${h}`, `V${n}`, '', 'VARIATION', n))
    return out
  }
  return [
    btn(`MJ::JOB::upsample_v6_2x_subtle::1::${h}::SOLO`, 'Upscale (Subtle)', '', 'UPSCALE', 1),
    btn(`MJ::JOB::upsample_v6_2x_creative::1::${h}::SOLO`, 'Upscale (Creative)', '', 'UPSCALE', 1),
    btn(`MJ::JOB::low_variation::1::${h}::SOLO`, 'Vary (Subtle)', '🪄', 'LOW_VARIATION', 1, false, 1),
    btn(`MJ::JOB::high_variation::1::${h}::SOLO`, 'Vary (Strong)', '🪄', 'HIGH_VARIATION', 1, false, 1),
    btn(`MJ::Inpaint::1::${h}::SOLO`, 'Vary (Region)', '🖌️', 'INPAINT', 1, true, 1),
    btn(`MJ::Outpaint::50::1::${h}::SOLO`, 'Zoom Out 2x', '🔍', 'ZOOM', 1),
    btn(`MJ::Outpaint::75::1::${h}::SOLO`, 'Zoom Out 1.5x', '🔍', 'ZOOM', 1),
    btn(`MJ::CustomZoom::${h}`, 'Custom Zoom', '🔍', 'CUSTOM_ZOOM', 1, true),
    btn(`MJ::JOB::pan_left::1::${h}::SOLO`, '', '⬅️', 'PAN', 1, false, 3),
    btn(`MJ::JOB::pan_right::1::${h}::SOLO`, '', '➡️', 'PAN', 1, false, 3),
    btn(`MJ::JOB::pan_up::1::${h}::SOLO`, '', '⬆️', 'PAN', 1, false, 3),
    btn(`MJ::JOB::pan_down::1::${h}::SOLO`, '', '⬇️', 'PAN', 1, false, 3)
  ]
}

/** Status, progress and times of `task` at clock time `t`. */
export function phaseAt (task: StoredTask, t: number): Phase {
  if (task.frozen || t >= task.endAt) {
    const started = task.startAt <= task.endAt ? task.startAt : 0
    switch (task.outcome) {
      case 'SUCCESS': return { status: 'SUCCESS', progress: '100%', startTime: started, finishTime: task.endAt, failReason: '' }
      case 'FAILURE': return { status: 'FAILURE', progress: '', startTime: started, finishTime: task.endAt, failReason: task.failReason }
      case 'CANCEL': return { status: 'CANCEL', progress: '', startTime: started, finishTime: task.endAt, failReason: '' }
      case 'MODAL': return { status: 'MODAL', progress: '0%', startTime: 0, finishTime: 0, failReason: '' }
    }
  }
  if (t - task.submitTime >= TASK_TIMEOUT_MS) {
    const started = t >= task.startAt ? task.startAt : 0
    return { status: 'FAILURE', progress: '', startTime: started, finishTime: task.submitTime + TASK_TIMEOUT_MS, failReason: TIMEOUT_REASON }
  }
  if (t >= task.runAt) {
    const span = Math.max(1, task.doneAt - task.runAt)
    const step = Math.min(PROGRESS_STEPS.length - 1, Math.floor(((t - task.runAt) / span) * PROGRESS_STEPS.length))
    return { status: 'IN_PROGRESS', progress: `${PROGRESS_STEPS[step] ?? 15}%`, startTime: task.startAt, finishTime: 0, failReason: '' }
  }
  if (t >= task.startAt) return { status: 'SUBMITTED', progress: '0%', startTime: task.startAt, finishTime: 0, failReason: '' }
  return { status: 'NOT_START', progress: '0%', startTime: 0, finishTime: 0, failReason: '' }
}

/** Insertion-ordered task map (the "storage order" list-by-condition returns). */
export class TaskStore {
  readonly #tasks = new Map<string, StoredTask>()
  #seq = 0

  get size (): number {
    return this.#tasks.size
  }

  /** Epoch ms + 3 random digits, like upstream; re-draws (then bumps the ms) on collision. */
  newId (nowMs: number, rng: Rng): string {
    let ms = Math.max(0, Math.floor(nowMs))
    for (;;) {
      for (let i = 0; i < 8; i++) {
        const id = `${ms}${String(Math.floor(rng() * 1000)).padStart(3, '0')}`
        if (!this.#tasks.has(id)) return id
      }
      ms++
    }
  }

  insert (draft: TaskDraft): StoredTask {
    if (this.#tasks.has(draft.id)) throw new Error(`duplicate simulator task id ${draft.id}`)
    const task = Object.freeze({ ...draft, seq: this.#seq++ })
    this.#tasks.set(task.id, task)
    return task
  }

  get (id: string): StoredTask | undefined {
    return this.#tasks.get(id)
  }

  /** Forgets a task: from then on it is unknown, as upstream forgets old tasks. */
  delete (id: string): boolean {
    return this.#tasks.delete(id)
  }

  /** The task if it exists and belongs to `key`; other keys' tasks are invisible. */
  owned (id: string, key: string): StoredTask | undefined {
    const task = this.#tasks.get(id)
    return task !== undefined && task.owner === key ? task : undefined
  }

  /** Tasks among `ids` owned by `key`, duplicates collapsed, in storage order. */
  listOwned (ids: readonly string[], key: string): StoredTask[] {
    const found = new Map<string, StoredTask>()
    for (const id of ids) {
      const task = this.owned(id, key)
      if (task !== undefined) found.set(id, task)
    }
    return [...found.values()].sort((a, b) => a.seq - b.seq)
  }
}

/** The upstream task object for `task` at time `t`; `rand` is set only for unfinished previews. */
export function renderTask (task: StoredTask, t: number, baseUrl: string, rand: () => string): UpstreamTask {
  const phase = phaseAt(task, t)
  const image = `${baseUrl}/mj/image/${task.id}`
  let imageUrl = ''
  if (phase.status === 'SUCCESS') imageUrl = image
  // Upstream shows a preview once rendering is under way; its link changes on every read.
  else if (phase.status === 'IN_PROGRESS' && phase.progress !== '15%') imageUrl = `${image}?rand=${rand()}`
  let buttons: UpstreamButton[] | null = null
  if (phase.status === 'SUCCESS') {
    buttons = buttonDefs(task).map(({ customId, emoji, label, style, type }) => ({ customId, emoji, label, style, type }))
  } else if (phase.status !== 'NOT_START') {
    buttons = []
  }
  return {
    id: task.id,
    action: task.action,
    status: phase.status,
    progress: phase.progress,
    prompt: task.prompt,
    promptEn: task.promptEn,
    description: task.description,
    failReason: phase.failReason,
    imageUrl,
    state: task.state,
    submitTime: task.submitTime,
    startTime: phase.startTime,
    finishTime: phase.finishTime,
    properties: phase.status === 'NOT_START' ? null : { finalPrompt: task.promptEn, finalZhPrompt: '' },
    buttons
  }
}
