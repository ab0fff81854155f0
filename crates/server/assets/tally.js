/*! Tally's collector for web pages. No dependencies; served by Tally at /tally.js.
 *
 *   <script async src="https://TALLY/tally.js" data-key="pk_..."></script>
 *   <script>window.tally=window.tally||function(){(tally.q=tally.q||[]).push(arguments)}</script>
 *
 * On load it sends a page_view with the page's UTM parameters, click ids and (external)
 * referrer. tally.track(type, props), tally.identify(userId) and tally.consent(true|false)
 * (or tally('track', ...) before the script has loaded). With data-consent="denied" on the
 * script tag nothing is sent and nothing is stored until tally.consent(true).
 */
(function (w, d) {
  'use strict';
  var script = d.currentScript;
  if (!script || (w.tally && w.tally.loaded)) return;
  var key = script.getAttribute('data-key');
  if (!key) {
    console.warn('tally.js: add data-key="pk_..." (a publishable key) to the script tag');
    return;
  }
  var base = new URL(script.src).origin;
  var consent = script.getAttribute('data-consent') !== 'denied';
  var ANONYMOUS = 'tally_aid', SESSION = 'tally_sid', USER = 'tally_uid';
  var SESSION_IDLE_MS = 30 * 60 * 1000;
  var URL_FIELDS = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content',
    'gclid', 'gbraid', 'wbraid', 'fbclid', 'ttclid', 'msclkid', 'li_fat_id'];
  var EVENT_FIELDS = ['order_id', 'revenue', 'currency'];
  var BATCH = 100;
  var queue = [], timer = null, sending = false, failures = 0, memory = {};

  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16)), h = [];
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    for (var i = 0; i < 16; i++) h.push((b[i] + 256).toString(16).slice(1));
    return h.join('').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
  }

  // First-party storage: localStorage, else a cookie; in memory only while consent is denied.
  function read(name) {
    if (name in memory) return memory[name];
    try { var v = localStorage.getItem(name); if (v) return (memory[name] = v); } catch (e) {}
    var m = d.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
    return m ? (memory[name] = decodeURIComponent(m[1])) : null;
  }
  function persist(name) {
    try { localStorage.setItem(name, memory[name]); return; } catch (e) {}
    d.cookie = name + '=' + encodeURIComponent(memory[name]) + '; path=/; max-age=34560000; SameSite=Lax' +
      (location.protocol === 'https:' ? '; Secure' : '');
  }
  function write(name, value) {
    memory[name] = value;
    if (consent) persist(name);
  }
  function forget() {
    [ANONYMOUS, SESSION, USER].forEach(function (name) {
      try { localStorage.removeItem(name); } catch (e) {}
      d.cookie = name + '=; path=/; max-age=0';
    });
  }

  function anonymousId() {
    var id = read(ANONYMOUS);
    if (!id) write(ANONYMOUS, (id = uuid()));
    return id;
  }
  // A session ends after 30 idle minutes, as in most analytics tools.
  function sessionId() {
    var now = Date.now(), s = (read(SESSION) || '').split('.');
    var id = s[0] && now - Number(s[1]) < SESSION_IDLE_MS ? s[0] : uuid();
    write(SESSION, id + '.' + now);
    return id;
  }

  function event(type, fields) {
    var e = {
      event_id: uuid(), type: type, occurred_at: new Date().toISOString(),
      session_id: sessionId(), anonymous_id: anonymousId()
    };
    var user = read(USER);
    if (user) e.user_id = user;
    for (var k in fields) if (fields[k] != null) e[k] = fields[k];
    queue.push(e);
    if (queue.length >= BATCH) flush();
    else if (!timer) timer = setTimeout(flush, 1000);
  }

  function endpoint(path) {
    return base + path + '?key=' + encodeURIComponent(key);
  }
  // text/plain with the key in the URL: a "simple" request, so no preflight round trip.
  function post(path, body, keepalive) {
    return fetch(endpoint(path), {
      method: 'POST', body: body, keepalive: !!keepalive, credentials: 'omit',
      headers: { 'Content-Type': 'text/plain' }
    });
  }

  // Sends queued events in batches; network errors, 429 and 5xx are retried with exponential
  // backoff and jitter (event ids make a re-sent event a duplicate, never a second one). Other
  // answers are final: each event's result says whether it was stored or dead-lettered.
  function flush() {
    clearTimeout(timer);
    timer = null;
    if (!consent || sending || !queue.length) return;
    var batch = queue.splice(0, BATCH), wait = 0;
    sending = true;
    post('/v1/events/batch', JSON.stringify({ events: batch }))
      .then(function (r) {
        if (r.status === 429 || r.status >= 500) {
          wait = 1000 * Number(r.headers.get('retry-after') || 0);
          throw r;
        }
        failures = 0;
      })
      .catch(function () {
        queue = batch.concat(queue);
        failures++;
        wait = Math.max(wait, Math.min(60000, 1000 * Math.pow(2, failures - 1)) * (0.5 + Math.random() / 2));
      })
      .then(function () {
        sending = false;
        if (queue.length) timer = setTimeout(flush, wait);
      });
  }

  // The page is going away: hand what is queued to the browser, which sends it after unload.
  function drain() {
    if (!consent || !queue.length) return;
    var body = JSON.stringify({ events: queue.splice(0) });
    var beacon = navigator.sendBeacon &&
      navigator.sendBeacon(endpoint('/v1/events/batch'), new Blob([body], { type: 'text/plain' }));
    if (!beacon) post('/v1/events/batch', body, true).catch(function () {});
  }

  function page() {
    var query = new URLSearchParams(location.search), fields = {};
    URL_FIELDS.forEach(function (name) { if (query.get(name)) fields[name] = query.get(name); });
    // The shop's own pages are not a referrer: only where the visitor came from is.
    try { if (d.referrer && new URL(d.referrer).host !== location.host) fields.referrer = d.referrer; } catch (e) {}
    event('page_view', fields);
  }

  function track(type, props) {
    var fields = {}, properties = {}, any = false;
    for (var k in props || {}) {
      if (EVENT_FIELDS.indexOf(k) >= 0) fields[k] = props[k];
      else { properties[k] = props[k]; any = true; }
    }
    if (any) fields.properties = properties;
    event(type, fields);
  }

  // Every later event carries both ids, which links them; /v1/identify links them at once
  // (a server without it answers 404 or no CORS grant, which is fine: the events still link).
  function identify(userId) {
    write(USER, String(userId));
    if (!consent) return;
    fetch(endpoint('/v1/identify'), {
      method: 'POST', credentials: 'omit', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ anonymous_id: anonymousId(), user_id: String(userId) })
    }).catch(function () {});
  }

  // consent(true) stores the ids and sends what waited; consent(false) drops both.
  function setConsent(granted) {
    consent = !!granted;
    if (consent) {
      for (var name in memory) persist(name);
      flush();
    } else {
      queue = [];
      forget();
    }
  }

  var api = { loaded: true, track: track, identify: identify, consent: setConsent, page: page };
  var early = (w.tally && w.tally.q) || [];
  w.tally = function (method) { return api[method].apply(null, [].slice.call(arguments, 1)); };
  for (var k in api) w.tally[k] = api[k];
  w.addEventListener('pagehide', drain);
  d.addEventListener('visibilitychange', function () { if (d.visibilityState === 'hidden') drain(); });
  page();
  early.forEach(function (args) { w.tally.apply(null, args); });
})(window, document);
