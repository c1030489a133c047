// Submits for the dashboard (POST /mj/submit/*), each with an Idempotency-Key, so that a double
// click or a retry after a network blip starts one task, not two. Plain browser JavaScript, no build.
(function () {
  'use strict'
  // Automatic retries of one attempt, with the same key; after them the person may click again (same key too).
  var RETRY_DELAYS_MS = [500, 1500]

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
    function again (fallback) {
      if (tries >= RETRY_DELAYS_MS.length) return fallback()
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

  window.MjSubmit = { Submitter: Submitter, newKey: newKey, unsettled: unsettled }
})()
