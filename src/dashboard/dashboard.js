// The live dashboard: task cards kept current by one EventSource on /v1/tasks/stream.
// Plain browser JavaScript, no build; settings come from the page's JSON config block.
(function () {
  'use strict'
  var config = JSON.parse(document.getElementById('dashboard-config').textContent)
  var ID = /^[A-Za-z0-9_.:-]{1,64}$/
  var cards = new Map() // id -> { el, final }
  var source = null
  var list = document.getElementById('tasks')
  var conn = document.getElementById('conn')
  var note = document.getElementById('note')

  function el (tag, cls, text) {
    var node = document.createElement(tag)
    if (cls) node.className = cls
    if (text !== undefined) node.textContent = text
    return node
  }

  function setConn (state, text) {
    conn.className = 'conn ' + state
    conn.textContent = text
  }

  // Upstream image links go through the gateway's own /mj/image/:id when it has one,
  // so the page needs no other origin (and works under `img-src 'self'`).
  function imageSrc (url) {
    if (typeof url !== 'string' || url === '') return ''
    var parsed
    try { parsed = new URL(url, window.location.href) } catch (e) { return '' }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return ''
    if (config.imageProxy && /^\/(?:.*\/)?mj\/image\/[^/]+$/.test(parsed.pathname)) {
      return '/mj/image/' + parsed.pathname.split('/').pop() + parsed.search
    }
    return parsed.href
  }

  function card (id) {
    var entry = cards.get(id)
    if (entry) return entry
    var li = el('li', 'task')
    li.dataset.id = id
    var thumb = el('div', 'thumb', 'waiting…')
    var body = el('div', 'body')
    var top = el('div', 'row')
    var status = el('span', 'status', '…')
    top.append(status, el('span', 'progress', ''))
    var bar = el('div', 'bar')
    bar.append(el('span'))
    var bottom = el('div', 'row')
    bottom.append(el('code', 'id', id), el('span', 'action', ''))
    body.append(top, bar, el('p', 'prompt', ''), el('p', 'reason', ''), bottom)
    li.append(thumb, body)
    list.append(li)
    document.getElementById('empty').hidden = true
    entry = { el: li, final: false }
    cards.set(id, entry)
    return entry
  }

  function render (task) {
    var entry = card(task.id)
    var li = entry.el
    var pct = parseFloat(task.progress)
    var statusText = task.status || 'PENDING'
    entry.final = task.status === 'SUCCESS' || task.status === 'FAILURE' || task.status === 'CANCEL'
    li.dataset.status = statusText
    li.dataset.final = String(entry.final)
    var status = li.querySelector('.status')
    status.textContent = statusText
    status.dataset.status = statusText
    li.querySelector('.progress').textContent = task.progress || ''
    li.querySelector('.bar > span').style.width = (isFinite(pct) ? Math.max(0, Math.min(100, pct)) : 0) + '%'
    li.querySelector('.prompt').textContent = task.prompt || task.promptEn || ''
    li.querySelector('.prompt').title = task.prompt || ''
    li.querySelector('.reason').textContent = task.failReason || ''
    li.querySelector('.action').textContent = task.action || ''
    var src = imageSrc(task.imageUrl)
    var thumb = li.querySelector('.thumb')
    var img = thumb.querySelector('img')
    if (src === '') {
      if (!img) thumb.textContent = entry.final ? 'no image' : task.status === 'MODAL' ? 'waiting for input' : 'rendering…'
    } else if (!img || img.getAttribute('src') !== src) {
      // Swap only once the new picture has loaded, so a preview never flickers to blank.
      var next = new Image()
      next.alt = task.prompt || task.id
      next.addEventListener('load', function () { thumb.replaceChildren(next) })
      next.src = src
    }
  }

  function unknown (data) {
    var entry = card(data.id)
    entry.final = true
    entry.el.dataset.status = 'UNKNOWN'
    var status = entry.el.querySelector('.status')
    status.textContent = 'UNKNOWN'
    status.dataset.status = 'UNKNOWN'
    entry.el.querySelector('.reason').textContent = data.message
    entry.el.querySelector('.thumb').textContent = 'not found'
  }

  // One stream for every unfinished id: browsers allow few connections per origin.
  function follow () {
    if (source) source.close()
    source = null
    var open = []
    cards.forEach(function (entry, id) { if (!entry.final) open.push(id) })
    if (open.length === 0) {
      setConn('closed', cards.size === 0 ? 'idle' : 'all tasks final')
      return
    }
    if (open.length > config.maxIds) {
      note.textContent = 'Following the first ' + config.maxIds + ' unfinished tasks (WATCH_MAX_IDS_PER_CONNECTION).'
      open = open.slice(0, config.maxIds)
    }
    setConn('', 'connecting…')
    var es = new EventSource(config.stream + '?ids=' + encodeURIComponent(open.join(',')))
    source = es
    es.addEventListener('open', function () { setConn('live', 'live · ' + open.length + ' watched') })
    es.addEventListener('task', function (e) { render(JSON.parse(e.data)) })
    es.addEventListener('error', function (e) {
      if (typeof e.data === 'string') {
        // An `event: error` message from the gateway, not a connection failure.
        var data = JSON.parse(e.data)
        if (data.retrying) note.textContent = 'Upstream trouble for ' + data.id + ': ' + data.message + ' (still watching)'
        else unknown(data)
        return
      }
      if (es.readyState === EventSource.CLOSED) setConn('closed', 'stream refused (limit reached or bad ids)')
      else setConn('', 'reconnecting…')
    })
    es.addEventListener('done', function () {
      es.close()
      if (source === es) source = null
      setConn('closed', 'all tasks final')
    })
  }

  function addIds (ids) {
    var added = false
    ids.forEach(function (id) {
      if (ID.test(id) && !cards.has(id)) { card(id); added = true }
    })
    if (added) follow()
  }

  function idsFromText (text) {
    return text.split(/[\s,]+/).filter(function (s) { return s !== '' })
  }

  function rememberInUrl () {
    var url = new URL(window.location.href)
    var ids = []
    cards.forEach(function (_e, id) { if (config.demoIds.indexOf(id) < 0) ids.push(id) })
    if (ids.length > 0) url.searchParams.set('ids', ids.join(','))
    else url.searchParams.delete('ids')
    window.history.replaceState(null, '', url)
  }

  document.getElementById('ids-form').addEventListener('submit', function (e) {
    e.preventDefault()
    var input = document.getElementById('ids')
    var ids = idsFromText(input.value)
    var bad = ids.filter(function (id) { return !ID.test(id) })
    note.textContent = bad.length > 0 ? 'Not a task id: ' + bad.join(', ') : ''
    addIds(ids)
    rememberInUrl()
    input.value = ''
  })

  var submitForm = document.getElementById('submit-form')
  if (config.submit) {
    submitForm.hidden = false
    submitForm.addEventListener('submit', function (e) {
      e.preventDefault()
      var input = document.getElementById('prompt')
      var button = submitForm.querySelector('button')
      button.disabled = true
      note.textContent = ''
      fetch(config.submit, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: input.value })
      }).then(function (res) {
        return res.json()
      }).then(function (body) {
        if ((body.code === 1 || body.code === 21 || body.code === 22) && typeof body.result === 'string') {
          input.value = ''
          addIds([body.result])
          rememberInUrl()
        } else {
          note.textContent = 'Submit refused: ' + (body.description || body.message || JSON.stringify(body))
        }
      }).catch(function (err) {
        note.textContent = 'Submit failed: ' + err.message
      }).finally(function () {
        button.disabled = false
      })
    })
  }

  document.getElementById('mode').textContent = config.demo ? 'demo · simulator' : ''
  if (config.passthrough) {
    note.textContent = 'This gateway forwards each client\u2019s own CometAPI key, which a browser stream cannot send: use the API instead.'
  }
  var fromUrl = idsFromText(new URL(window.location.href).searchParams.get('ids') || '')
  addIds(config.demoIds.concat(fromUrl))
  if (cards.size === 0) setConn('closed', 'idle')
})()
