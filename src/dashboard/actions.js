// What the dashboard submits (POST /mj/submit/*): the prompt box, the buttons of a finished task and
// the prompt of a MODAL task. Every submit carries an Idempotency-Key, so a double click or a retry
// after a network blip starts one task, not two. Plain browser JavaScript, no build: window.MjActions.
(function () {
  'use strict'
  // Automatic retries of one attempt, with the same key; after them the person may click again (same key too).
  var RETRY_DELAYS_MS = [500, 1500]
  // Submit codes that mean a task exists: started, waiting for a modal, queued.
  var ACCEPTED = [1, 21, 22]
  var ID = /^[A-Za-z0-9_.:-]{1,64}$/

  /** 128 random bits as hex. crypto.randomUUID needs a secure context; getRandomValues works on any http:// address. */
  function newKey () {
    var bytes = new Uint8Array(16)
    window.crypto.getRandomValues(bytes)
    var hex = ''
    for (var i = 0; i < bytes.length; i++) hex += (bytes[i] + 256).toString(16).slice(1)
    return hex
  }

  /** 5xx: the gateway kept no answer under the key (upstream failed or timed out); 409: the first try is still in flight. */
  function unsettled (status) {
    return status >= 500 || status === 409
  }

  function wait (ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms) })
  }

  /**
   * One thing a person can submit: a task button, a form. An attempt keeps its
   * key until the gateway gives a definite answer (2xx, or a 4xx but 409), so
   * every retry of it, automatic or by clicking again after a failure, sends the
   * same key and body, and the gateway answers with the first request's task
   * instead of starting another. After a definite answer the next send is a new
   * submit with a new key; so is a send with another body.
   */
  function Submitter (url) {
    this.url = url
    this.pending = null
  }

  /** Resolves `{ status, body }` (body: parsed JSON or null), or rejects when the network failed on every try. */
  Submitter.prototype.send = function (body) {
    var self = this
    var text = JSON.stringify(body)
    if (self.pending === null || self.pending.body !== text) self.pending = { key: newKey(), body: text }
    var attempt = self.pending
    var tries = 0
    function again (giveUp) {
      if (tries >= RETRY_DELAYS_MS.length) return giveUp()
      return wait(RETRY_DELAYS_MS[tries++]).then(once)
    }
    function once () {
      return fetch(self.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': attempt.key },
        body: attempt.body
      }).then(function (res) {
        return res.json().catch(function () { return null }).then(function (json) {
          return { status: res.status, body: json }
        })
      }).then(function (answer) {
        if (unsettled(answer.status)) return again(function () { return answer })
        if (self.pending === attempt) self.pending = null
        return answer
      }, function (err) {
        return again(function () { throw err })
      })
    }
    return once()
  }

  function el (tag, cls, text) {
    var node = document.createElement(tag)
    if (cls) node.className = cls
    if (text !== undefined) node.textContent = text
    return node
  }

  function answerText (answer) {
    var body = answer.body
    return (body && (body.description || body.message)) || 'HTTP ' + answer.status
  }

  // Buttons that show only an emoji (🔄, ⬅️) are named from their customId: MJ::JOB::pan_left::1::… → "Pan left".
  function buttonName (button) {
    if (typeof button.label === 'string' && button.label !== '') return button.label
    var parts = button.customId.split('::')
    var name = (parts[1] === 'JOB' ? parts[2] : parts[1]) || 'action'
    return name.charAt(0).toUpperCase() + name.slice(1).replace(/_/g, ' ')
  }

  /**
   * `urls`: the submit routes ({ imagine, action, modal }). `started(id, text)`
   * is told of every task a submit started, `problem(text)` of every refusal or
   * failure; `clear()` when a submit begins.
   */
  function MjActions (urls, started, problem, clear) {
    /** Submits `payload` with `submitter` while `control` is disabled; resolves whether a task was started. */
    function act (control, submitter, payload, what) {
      control.disabled = true
      control.setAttribute('aria-busy', 'true')
      clear()
      return submitter.send(payload).then(function (answer) {
        var body = answer.body || {}
        if (answer.status < 300 && ACCEPTED.indexOf(body.code) >= 0 && typeof body.result === 'string' && ID.test(body.result)) {
          started(body.result, what + ': started task ' + body.result)
          return true
        }
        problem(unsettled(answer.status)
          ? what + ' failed: ' + answerText(answer) + ' (try again: it is sent once)'
          : what + ' refused: ' + answerText(answer))
        return false
      }, function (err) {
        problem(what + ' failed: ' + err.message + ' (try again: it is sent once)')
        return false
      }).finally(function () {
        control.disabled = false
        control.removeAttribute('aria-busy')
      })
    }

    /** The buttons of a SUCCESS task in `box`, rebuilt only when they change (`card.buttons` remembers them). */
    function renderButtons (card, box, task) {
      var buttons = task.status === 'SUCCESS' && Array.isArray(task.buttons)
        ? task.buttons.filter(function (b) { return b !== null && typeof b === 'object' && typeof b.customId === 'string' && b.customId !== '' })
        : []
      var signature = buttons.map(function (b) { return b.customId }).join('\n')
      if (signature === card.buttons) return
      card.buttons = signature
      box.replaceChildren()
      box.hidden = buttons.length === 0
      buttons.forEach(function (b) {
        var name = buttonName(b)
        var button = el('button', 'mj')
        button.type = 'button'
        button.title = name
        button.dataset.customId = b.customId
        if (typeof b.emoji === 'string' && b.emoji !== '') {
          var emoji = el('span', 'emoji', b.emoji)
          emoji.setAttribute('aria-hidden', 'true')
          button.append(emoji)
        }
        if (typeof b.label === 'string' && b.label !== '') button.append(el('span', '', b.label))
        else button.setAttribute('aria-label', name)
        var submitter = new Submitter(urls.action)
        button.addEventListener('click', function () {
          act(button, submitter, { taskId: task.id, customId: b.customId }, name + ' on ' + task.id)
        })
        box.append(button)
      })
    }

    /** While the task waits in MODAL, a form before `before` takes the prompt that `modal` submits with. */
    function renderModal (body, before, task) {
      var form = body.querySelector('form.modal')
      if (task.status !== 'MODAL') {
        if (form) form.remove()
        return
      }
      if (form) return
      form = el('form', 'modal')
      var label = el('label', '', 'Prompt for ' + (task.action || 'this task'))
      var input = el('input')
      input.type = 'text'
      input.name = 'prompt'
      input.maxLength = 2000
      input.value = task.prompt || ''
      label.append(input)
      var button = el('button', '', 'Submit')
      button.type = 'submit'
      form.append(label, button)
      var submitter = new Submitter(urls.modal)
      form.addEventListener('submit', function (e) {
        e.preventDefault()
        act(button, submitter, { taskId: task.id, prompt: input.value }, (task.action || 'Modal') + ' on ' + task.id)
      })
      body.insertBefore(form, before)
    }

    /** The prompt box: an imagine per submit; the box is cleared once its task exists. */
    function bindImagine (form, input) {
      var submitter = new Submitter(urls.imagine)
      form.addEventListener('submit', function (e) {
        e.preventDefault()
        act(form.querySelector('button'), submitter, { prompt: input.value }, 'Imagine').then(function (ok) {
          if (ok) input.value = ''
        })
      })
    }

    return { renderButtons: renderButtons, renderModal: renderModal, bindImagine: bindImagine }
  }

  MjActions.Submitter = Submitter
  window.MjActions = MjActions
})()
