/**
 * Demo tasks seeded at start-up, owned by the first configured key. Ids are
 * fixed so docs, dashboards and tests can refer to them.
 *
 * | name       | id               | state at start-up | then                                   |
 * |------------|------------------|-------------------|----------------------------------------|
 * | success    | 1700000000000101 | SUCCESS (IMAGINE, 9 buttons) | fixed                       |
 * | upscaled   | 1700000060000202 | SUCCESS (UPSCALE of success U1) | fixed                    |
 * | failure    | 1700000120000303 | FAILURE (invalid parameter) | fixed                        |
 * | cancel     | 1700000180000404 | CANCEL            | fixed                                  |
 * | modal      | 1700000240000505 | MODAL (CUSTOM_ZOOM of upscaled) | fixed; accepts /mj/submit/modal |
 * | inProgress | 1700000300000606 | IN_PROGRESS       | SUCCESS 30 s after start-up            |
 * | submitted  | 1700000300000707 | SUBMITTED         | IN_PROGRESS at +6 s, SUCCESS at +45 s  |
 * | notStart   | 1700000300000808 | NOT_START         | SUBMITTED +10 s, IN_PROGRESS +15 s, SUCCESS +60 s |
 *
 * Live seeds run on the simulator clock measured from start-up, so they
 * ignore `durationMs`.
 */
import { sha256 } from '../core/credentials.js'
import type { TaskDraft } from './tasks.js'

export const SEED_TASK_IDS = Object.freeze({
  success: '1700000000000101',
  upscaled: '1700000060000202',
  failure: '1700000120000303',
  cancel: '1700000180000404',
  modal: '1700000240000505',
  inProgress: '1700000300000606',
  submitted: '1700000300000707',
  notStart: '1700000300000808'
} as const)

export type SeedName = keyof typeof SEED_TASK_IDS

/** A uuid derived from text, so seeded buttons never change between runs. */
function stableUuid (text: string): string {
  const h = sha256(text).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

function grid (id: string, prompt: string): string[] {
  return [1, 2, 3, 4].map((n) => `${id}|${prompt}|${n}`)
}

export function seedDrafts (owner: string, t0: number): TaskDraft[] {
  const S = SEED_TASK_IDS
  const base = (id: string, action: string, prompt: string): Omit<TaskDraft, 'submitTime' | 'startAt' | 'runAt' | 'doneAt' | 'endAt' | 'outcome' | 'frozen'> => ({
    id,
    owner,
    action,
    prompt,
    promptEn: prompt,
    description: 'Submit success',
    state: `seed:${id}`,
    failReason: '',
    hash: stableUuid(id),
    layout: action === 'UPSCALE' ? 'single' : 'grid',
    tiles: grid(id, prompt),
    modalAction: null,
    parentId: null
  })
  // Stable seeds carry their own 2023 timestamps (matching their ids) and never move.
  const fixed = (submitTime: number, outcome: TaskDraft['outcome'], started = true) => ({
    submitTime,
    startAt: started ? submitTime + 2_000 : Number.POSITIVE_INFINITY,
    runAt: submitTime + 5_000,
    doneAt: submitTime + 30_000,
    endAt: outcome === 'MODAL' ? submitTime : submitTime + 30_000,
    outcome,
    frozen: true
  })
  const live = (submitAgo: number, startIn: number, runIn: number, doneIn: number) => ({
    submitTime: t0 - submitAgo,
    startAt: t0 + startIn,
    runAt: t0 + runIn,
    doneAt: t0 + doneIn,
    endAt: t0 + doneIn,
    outcome: 'SUCCESS' as const,
    frozen: false
  })
  const successPrompt = 'a lighthouse on a cliff at dawn, watercolor --ar 1:1'
  return [
    { ...base(S.success, 'IMAGINE', successPrompt), ...fixed(1_700_000_000_000, 'SUCCESS') },
    {
      ...base(S.upscaled, 'UPSCALE', successPrompt),
      tiles: [`${S.success}|${successPrompt}|1`],
      parentId: S.success,
      ...fixed(1_700_000_060_000, 'SUCCESS')
    },
    {
      ...base(S.failure, 'IMAGINE', 'a cyberpunk street market at night --foo'),
      failReason: '[Invalid parameter] Unrecognized parameter(s): `--foo`',
      ...fixed(1_700_000_120_000, 'FAILURE')
    },
    { ...base(S.cancel, 'IMAGINE', 'portrait of an astronaut cat, studio lighting'), ...fixed(1_700_000_180_000, 'CANCEL', false) },
    {
      ...base(S.modal, 'CUSTOM_ZOOM', successPrompt),
      tiles: [`${S.success}|${successPrompt}|1`],
      layout: 'single',
      modalAction: 'CUSTOM_ZOOM',
      parentId: S.upscaled,
      ...fixed(1_700_000_240_000, 'MODAL')
    },
    { ...base(S.inProgress, 'IMAGINE', 'a koi pond in autumn, ukiyo-e woodblock print'), ...live(10_000, -8_000, -6_000, 30_000) },
    { ...base(S.submitted, 'IMAGINE', 'minimalist mountain logo, flat vector'), ...live(3_000, -1_000, 6_000, 45_000) },
    { ...base(S.notStart, 'IMAGINE', 'an isometric tiny island with a windmill'), ...live(1_000, 10_000, 15_000, 60_000) }
  ]
}
