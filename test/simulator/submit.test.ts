import t from 'tap'
import { SEED_TASK_IDS, seedDrafts } from '../../src/simulator/seed.js'
import { acceptedAnswer, buildDraft, decideAction, decideBlend, decideDescribe, decideImagine, decideModal, type SubmitContext, type TaskPlan } from '../../src/simulator/submit.js'
import { buttonDefs, type StoredTask } from '../../src/simulator/tasks.js'

const NOW = 1_750_000_000_000
const seeded = new Map<string, StoredTask>(seedDrafts('sk-a', NOW).map((d, seq) => [d.id, { ...d, seq }]))

function context (over: Partial<SubmitContext> = {}): SubmitContext {
  return { now: NOW, durationMs: 20_000, bannedWords: ['banned'], failWords: ['fail-midway'], ownedTask: (id) => seeded.get(id), ...over }
}

const relay = (name: string) => ({ accepted: false, answer: { status: 400, body: { description: `${name} `, type: 'upstream_error', code: 4 } } })

t.test('decideImagine refuses bad bodies as new-api does and plans an IMAGINE grid otherwise', async (t) => {
  const ctx = context()
  t.same(decideImagine({ prompt: 5 }, ctx), relay('bind_request_body_failed'))
  t.same(decideImagine({ prompt: 'x', base64Array: 'nope' }, ctx), relay('bind_request_body_failed'))
  t.same(decideImagine({ prompt: '  ' }, ctx), relay('prompt_is_required'))
  t.match(decideImagine({ prompt: 'x', base64Array: ['raw'] }, ctx), { accepted: false, answer: { status: 200, body: { code: 4, description: 'base64 format error' } } })
  t.match(decideImagine({ prompt: 'x', botType: 'DALL_E' }, ctx), { accepted: false, answer: { status: 200, body: { code: 4 } } })
  t.same(decideImagine({ prompt: 'A BANNED cat' }, ctx), {
    accepted: false,
    answer: { status: 200, body: { code: 24, description: 'May contain banned words', result: null, properties: { promptEn: 'A BANNED cat', bannedWord: 'banned' } } }
  })
  t.same(decideImagine({ prompt: 'a cat', state: 's', botType: 'NIJI_JOURNEY' }, ctx), {
    accepted: true,
    plan: { action: 'IMAGINE', prompt: 'a cat', state: 's', layout: 'grid', parentId: null }
  })
})

t.test('decideAction looks the parent up through the context and plans the button\'s task', async (t) => {
  const success = seeded.get(SEED_TASK_IDS.success) as StoredTask
  const u2 = buttonDefs(success).find((b) => b.label === 'U2')
  const v1 = buttonDefs(success).find((b) => b.label === 'V1')
  t.same(decideAction({ taskId: success.id }, context()), relay('custom_id_is_required'))
  t.same(decideAction({ taskId: success.id, customId: 'nope' }, context()), relay('unknown_action'))
  t.same(decideAction({ customId: u2?.customId }, context()), relay('task_id_is_required'))
  t.same(decideAction({ taskId: success.id, customId: u2?.customId }, context({ ownedTask: () => undefined })), relay('task_not_found'))
  t.same(decideAction({ taskId: SEED_TASK_IDS.inProgress, customId: u2?.customId }, context()), relay('task_status_not_success'))
  t.same(decideAction({ taskId: success.id, customId: u2?.customId, state: 'st' }, context()), {
    accepted: true,
    plan: { action: 'UPSCALE', prompt: success.prompt, state: 'st', layout: 'single', tiles: [success.tiles[1]], parentId: success.id }
  })
  t.match(decideAction({ taskId: success.id, customId: v1?.customId }, context()), { accepted: true, plan: { action: 'VARIATION', layout: 'grid', tiles: undefined } })
  const upscaled = seeded.get(SEED_TASK_IDS.upscaled) as StoredTask
  const zoom = buttonDefs(upscaled).find((b) => b.action === 'CUSTOM_ZOOM')
  t.match(decideAction({ taskId: upscaled.id, customId: zoom?.customId }, context()), { accepted: true, plan: { modalAction: 'CUSTOM_ZOOM', tiles: upscaled.tiles } })
})

t.test('decideModal accepts only a task waiting in MODAL and keeps its prompt when none is given', async (t) => {
  const modal = seeded.get(SEED_TASK_IDS.modal) as StoredTask
  t.match(decideModal({ taskId: SEED_TASK_IDS.success }, context()), { accepted: false, answer: { status: 200, body: { code: 4 } } })
  t.same(decideModal({ taskId: modal.id, prompt: ' ' }, context()), {
    accepted: true,
    plan: { action: 'MODAL', prompt: modal.prompt, state: modal.state, layout: 'grid', parentId: modal.id }
  })
  t.match(decideModal({ taskId: modal.id, prompt: 'banned zoom' }, context()), { accepted: false, answer: { body: { code: 24 } } })
})

t.test('acceptedAnswer and buildDraft turn a plan into the reply and the stored task', async (t) => {
  const plan: TaskPlan = { action: 'IMAGINE', prompt: 'a cat that will fail-midway', state: '', layout: 'grid', parentId: null }
  t.same(acceptedAnswer(plan, '7'), { status: 200, body: { code: 1, description: 'Submit success', result: '7', properties: { discordInstanceId: 'simulator', discordChannelId: 'simulator' } } })
  t.match(acceptedAnswer({ ...plan, modalAction: 'INPAINT' }, '7'), { body: { code: 21, result: '7', properties: { finalPrompt: plan.prompt, remix: true } } })
  const draft = buildDraft(plan, { id: '7', hash: 'h', owner: 'sk-a' }, context())
  t.match(draft, {
    id: '7',
    owner: 'sk-a',
    hash: 'h',
    tiles: ['7|a cat that will fail-midway|1', '7|a cat that will fail-midway|2', '7|a cat that will fail-midway|3', '7|a cat that will fail-midway|4'],
    submitTime: NOW,
    startAt: NOW + 2_000,
    runAt: NOW + 4_000,
    doneAt: NOW + 20_000,
    endAt: NOW + 12_000,
    outcome: 'FAILURE',
    failReason: 'Simulated failure: the prompt contains "fail-midway"',
    modalAction: null
  })
  t.match(buildDraft({ ...plan, modalAction: 'INPAINT' }, { id: '8', hash: 'h', owner: 'sk-a' }, context()), { outcome: 'MODAL', endAt: NOW, failReason: '', modalAction: 'INPAINT' })
})

const PNG = 'data:image/png;base64,iVBORw0KGgo='

t.test('decideDescribe takes a data URL or a link and plans a DESCRIBE task whose prompt is four readings', async (t) => {
  const ctx = context()
  t.strictSame(decideDescribe({}, ctx), relay('base64_is_required'))
  t.strictSame(decideDescribe({ base64: 5 }, ctx), relay('bind_request_body_failed'))
  t.strictSame(decideDescribe({ base64: 'raw' }, ctx), { accepted: false, answer: { status: 200, body: { code: 4, description: 'base64 format error', result: null, properties: {} } } })
  t.strictSame(decideDescribe({ link: 'ftp://x' }, ctx), { accepted: false, answer: { status: 200, body: { code: 4, description: 'link must be an http(s) URL', result: null, properties: {} } } })
  const planned = decideDescribe({ base64: PNG, state: 's' }, ctx)
  if (!planned.accepted) throw new Error('refused')
  t.equal(planned.plan.action, 'DESCRIBE')
  t.equal(planned.plan.layout, 'text')
  t.equal(planned.plan.state, 's')
  t.equal(planned.plan.prompt.split('\n\n').length, 4, 'four prompts')
  t.strictSame(decideDescribe({ base64: PNG }, ctx), { ...planned, plan: { ...planned.plan, state: '' } }, 'the same image reads the same')
  const byLink = decideDescribe({ link: 'https://example.test/a.png' }, ctx)
  t.equal(byLink.accepted, true)
  const draft = buildDraft(planned.plan, { id: '9', hash: 'h', owner: 'sk-a' }, ctx)
  t.strictSame(buttonDefs({ ...draft, seq: 0 }), [], 'a DESCRIBE task has no buttons')
})

t.test('decideBlend takes two to five images and plans a BLEND grid', async (t) => {
  const ctx = context()
  t.strictSame(decideBlend({}, ctx), relay('base64_array_is_required'))
  t.strictSame(decideBlend({ base64Array: 'x' }, ctx), relay('bind_request_body_failed'))
  t.strictSame(decideBlend({ base64Array: [PNG] }, ctx), { accepted: false, answer: { status: 200, body: { code: 4, description: 'base64Array must hold 2 to 5 images', result: null, properties: {} } } })
  t.strictSame(decideBlend({ base64Array: [PNG, PNG, PNG, PNG, PNG, PNG] }, ctx), { accepted: false, answer: { status: 200, body: { code: 4, description: 'base64Array must hold 2 to 5 images', result: null, properties: {} } } })
  t.strictSame(decideBlend({ base64Array: [PNG, 'raw'] }, ctx), { accepted: false, answer: { status: 200, body: { code: 4, description: 'base64 format error', result: null, properties: {} } } })
  t.strictSame(decideBlend({ base64Array: [PNG, PNG], dimensions: 'WIDE' }, ctx), { accepted: false, answer: { status: 200, body: { code: 4, description: 'dimensions must be PORTRAIT, SQUARE or LANDSCAPE', result: null, properties: {} } } })
  t.strictSame(decideBlend({ base64Array: [PNG, PNG], dimensions: 'PORTRAIT', botType: 'DALL_E' }, ctx), { accepted: false, answer: { status: 200, body: { code: 4, description: 'botType must be MID_JOURNEY or NIJI_JOURNEY', result: null, properties: {} } } })
  t.strictSame(decideBlend({ base64Array: [PNG, PNG], dimensions: 'SQUARE', state: 'b' }, ctx), { accepted: true, plan: { action: 'BLEND', prompt: '', state: 'b', layout: 'grid', parentId: null } })
})
