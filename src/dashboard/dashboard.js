// The live dashboard: task cards kept current by one EventSource on /v1/tasks/stream.
// Plain browser JavaScript, no build; settings come from the page's JSON config block, and
// submits go through actions.js (window.MjActions). Task text only ever lands in textContent.
(function () {
  'use strict'
  var config = JSON.parse(document.getElementById('dashboard-config').textContent)
  var ID = /^[A-Za-z0-9_.:-]{1,64}$/
  var cards = new Map() // id -> { el, final, feed, buttons }
  var followed = [] // the ids of the current stream
  var live = false
  var source = null
  var list = document.getElementById('tasks')
  var conn = document.getElementById('conn')
  var note = document.getElementById('note')
  var info = document.getElementById('info')

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

  // Counts what the stream still reports on: final and unknown ids are no longer watched.
  function showLive () {
    var n = followed.filter(function (id) { var entry = cards.get(id); return entry !== undefined && !entry.final }).length
    setConn('live', 'live · ' + n + ' watched')
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

  /** The card of `id`, created at the top of the grid (`first`) or at the end. */
  function card (id, first) {
    var entry = cards.get(id)
    if (entry) return entry
    var li = el('li', 'task')
    li.dataset.id = id
    var thumb = el('div', 'thumb', 'waiting…')
    var body = el('div', 'body')
    var top = el('div', 'row')
    top.append(el('span', 'status', '…'), el('span', 'progress', ''))
    var bar = el('div', 'bar')
    bar.append(el('span'))
    var bottom = el('div', 'row bottom')
    bottom.append(el('code', 'id', id), el('span', 'action', ''))
    var buttons = el('div', 'actions')
    buttons.hidden = true
    body.append(top, bar, el('p', 'prompt', ''), el('p', 'reason', ''), buttons, bottom)
    li.append(thumb, body)
    if (first) list.prepend(li)
    else list.append(li)
    document.getElementById('empty').hidden = true
    entry = { el: li, final: false, feed: false, buttons: '' }
    cards.set(id, entry)
    return entry
  }

  // Demo mode: submits, whose new tasks join at the top. Elsewhere the page only watches.
  var actions = config.submit
    ? window.MjActions(config.submit, function (id, text) {
      info.textContent = text
      addIds([id], true)
    }, function (text) {
      note.textContent = text
    }, function () {
      note.textContent = ''
    })
    : null

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
    if (actions) {
      actions.renderButtons(entry, li.querySelector('.actions'), task)
      actions.renderModal(li.querySelector('.body'), li.querySelector('.bottom'), task)
    }
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
    if (live) showLive()
  }

  function unknown (data) {
    var entry = card(data.id)
    entry.final = true
    entry.el.dataset.status = 'UNKNOWN'
    entry.el.dataset.final = 'true'
    var status = entry.el.querySelector('.status')
    status.textContent = 'UNKNOWN'
    status.dataset.status = 'UNKNOWN'
    entry.el.querySelector('.reason').textContent = data.message || ''
    entry.el.querySelector('.thumb').textContent = 'not found'
    if (live) showLive()
  }

  // One stream for every unfinished id: browsers allow few connections per origin.
  function follow () {
    if (source) source.close()
    source = null
    live = false
    var open = []
    cards.forEach(function (entry, id) { if (!entry.final) open.push(id) })
    followed = open
    if (open.length === 0) {
      setConn('closed', cards.size === 0 ? 'idle' : 'all tasks final')
      return
    }
    if (open.length > config.maxIds) {
      note.textContent = 'Following the first ' + config.maxIds + ' unfinished tasks (WATCH_MAX_IDS_PER_CONNECTION).'
      followed = open = open.slice(0, config.maxIds)
    }
    setConn('', 'connecting…')
    var es = new EventSource(config.stream + '?ids=' + encodeURIComponent(open.join(',')))
    source = es
    es.addEventListener('open', function () { live = true; showLive() })
    es.addEventListener('task', function (e) { render(JSON.parse(e.data)) })
    es.addEventListener('error', function (e) {
      if (typeof e.data === 'string') {
        // An `event: error` message from the gateway, not a connection failure.
        var data = JSON.parse(e.data)
        if (data.retrying) note.textContent = 'Upstream trouble for ' + data.id + ': ' + data.message + ' (still watching)'
        else unknown(data)
        return
      }
      live = false
      if (es.readyState === EventSource.CLOSED) setConn('closed', 'stream refused (limit reached or bad ids)')
      else setConn('', 'reconnecting…')
    })
    es.addEventListener('done', function () {
      es.close()
      if (source === es) source = null
      live = false
      setConn('closed', 'all tasks final')
    })
  }

  /** Adds cards for new ids, at the top (`first`: the first id ends up first) or at the end, and follows them. */
  function addIds (ids, first) {
    var added = []
    ids.forEach(function (id) {
      if (ID.test(id) && !cards.has(id) && added.indexOf(id) < 0) added.push(id)
    })
    if (added.length === 0) return []
    if (first) added.slice().reverse().forEach(function (id) { card(id, true) })
    else added.forEach(function (id) { card(id, false) })
    follow()
    rememberInUrl()
    return added
  }

  function idsFromText (text) {
    return text.split(/[\s,]+/).filter(function (s) { return s !== '' })
  }

  // The address keeps what the person added, so a reload (or a shared link) shows those tasks.
  function rememberInUrl () {
    var url = new URL(window.location.href)
    var ids = []
    list.querySelectorAll('li.task').forEach(function (li) {
      var id = li.dataset.id
      if (config.demoIds.indexOf(id) < 0 && !cards.get(id).feed) ids.push(id)
    })
    if (ids.length > 0) url.searchParams.set('ids', ids.join(','))
    else url.searchParams.delete('ids')
    window.history.replaceState(null, '', url)
  }

  // Demo mode: the simulator starts a task every few seconds while this page asks (and is visible).
  function followDemoFeed (feed) {
    var timer = null
    var busy = false
    function add (ids) {
      var fresh = ids.filter(function (id) { return typeof id === 'string' && ID.test(id) && !cards.has(id) }).slice(0, feed.max)
      if (fresh.length === 0) return
      // Newest first in the answer: add the oldest first, each at the top.
      fresh.reverse().forEach(function (id) { card(id, true).feed = true })
      var kept = 0
      Array.prototype.slice.call(list.querySelectorAll('li.task')).forEach(function (li) {
        var entry = cards.get(li.dataset.id)
        if (!entry.feed) return
        if (++kept > feed.max && entry.final) {
          li.remove()
          cards.delete(li.dataset.id)
        }
      })
      follow()
    }
    function tick () {
      timer = null
      if (busy || document.visibilityState !== 'visible') return
      busy = true
      fetch(feed.url, { cache: 'no-store' }).then(function (res) {
        return res.ok ? res.json() : null
      }).then(function (body) {
        if (body && Array.isArray(body.ids)) add(body.ids)
      }).catch(function () {}).finally(function () {
        busy = false
        if (timer === null) timer = setTimeout(tick, feed.pollMs)
      })
    }
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState !== 'visible' || busy) return
      clearTimeout(timer)
      tick()
    })
    tick()
  }

  document.getElementById('ids-form').addEventListener('submit', function (e) {
    e.preventDefault()
    var input = document.getElementById('ids')
    var ids = idsFromText(input.value)
    var bad = ids.filter(function (id) { return !ID.test(id) })
    note.textContent = bad.length > 0 ? 'Not a task id: ' + bad.join(', ') : ''
    addIds(ids, true)
    input.value = ''
  })

  if (actions) {
    var submitForm = document.getElementById('submit-form')
    submitForm.hidden = false
    actions.bindImagine(submitForm, document.getElementById('prompt'))
  }

  document.getElementById('mode').textContent = config.demo ? 'demo · simulator' : ''
  if (config.passthrough) {
    note.textContent = 'This gateway forwards each client\u2019s own CometAPI key, which a browser stream cannot send: use the API instead.'
  }
  // `?ids=` shows exactly those tasks; without it, the demo's tasks (and the ones it keeps starting).
  var fromUrl = idsFromText(new URL(window.location.href).searchParams.get('ids') || '')
  if (fromUrl.length > 0) {
    addIds(fromUrl, false)
  } else {
    addIds(config.demoIds, false)
    if (config.demoFeed) followDemoFeed(config.demoFeed)
  }
  if (cards.size === 0) setConn('closed', 'idle')
})()
