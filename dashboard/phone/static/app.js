/* Gridwatch phone app (/m/): report, tasks, patrol diary, 该找谁 — for the grid staff, offline-safe.
 *
 * Everything goes through the HTTP API with the device's bearer token (POST /api/v1/device/sign-in).
 * Every write (report, workflow step, diary, track batch) is first stored in the IndexedDB queue with
 * its own Idempotency-Key, then sent: at once when online, on the `online` event, on app start and by
 * a retry with backoff — so a write made in a basement is sent exactly once when the signal returns.
 * Texts come from dashboard/i18n.py (keys m_*), zh-CN first, English by the switch. */
(function () {
  'use strict';

  const T = JSON.parse(document.getElementById('m-texts').textContent);
  const ROOT = document.getElementById('m-app');
  const MAIN = document.getElementById('m-main');
  const NAV = document.getElementById('m-nav');
  const LS = window.localStorage;
  const K = { token: 'gw_m_token', me: 'gw_m_me', lang: 'gw_m_lang', meta: 'gw_m_meta', tasks: 'gw_m_tasks',
              seen: 'gw_m_seen', patrol: 'gw_m_patrol', issue: 'gw_m_issue_' };
  let lang = LS.getItem(K.lang) === 'en' ? 'en' : 'zh';

  // -- small helpers -----------------------------------------------------------------------------
  function t(key, kw) {
    let s = (T[key] || [key, key])[lang === 'zh' ? 0 : 1];
    if (kw) for (const k of Object.keys(kw)) s = s.split('{' + k + '}').join(String(kw[k]));
    return s;
  }
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined && kid !== false)
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return el;
  }
  function jget(key, dflt) { try { const v = LS.getItem(key); return v ? JSON.parse(v) : dflt; } catch (e) { return dflt; } }
  function jset(key, v) { try { LS.setItem(key, JSON.stringify(v)); } catch (e) { /* full: a cache only */ } }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
  }
  function msg(err) {
    if (err && err.error) return lang === 'zh' ? err.error.message_zh : err.error.message_en;
    return String(err && err.message ? err.message : err);
  }
  let toastTimer = null;
  function toast(text, cls) {
    let el = document.getElementById('m-toast');
    if (!el) { el = h('div', { id: 'm-toast', class: 'm-toast', role: 'status' }); document.body.append(el); }
    el.textContent = text; el.className = 'm-toast ' + (cls || '');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.remove(), 4000);
  }
  const tz = () => (jget(K.meta, {}).timezone || ROOT.dataset.tz);   // the business time zone (settings)
  function fmtTime(iso) {
    if (!iso) return '—';
    return new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', { timeZone: tz(), month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', hour12: false }).format(new Date(iso));
  }
  function span(ms) {
    const m = Math.max(1, Math.round(Math.abs(ms) / 60000));
    if (m >= 1440) return t('days', { n: Math.floor(m / 1440) }) + (m % 1440 >= 60 ? t('hours', { n: Math.floor((m % 1440) / 60) }) : '');
    if (m >= 60) return t('hours', { n: Math.floor(m / 60) });
    return t('minutes', { n: m });
  }
  function countdown(dueIso) {
    if (!dueIso) return { text: t('no_due'), late: false };
    const left = new Date(dueIso).getTime() - Date.now();
    return left < 0 ? { text: t('overdue', { d: span(left) }), late: true } : { text: t('due_in', { d: span(left) }), late: false };
  }

  // -- the device's sign-in ----------------------------------------------------------------------
  const token = () => LS.getItem(K.token);
  const me = () => jget(K.me, null);
  function signedOutLocally(revoked) {
    LS.removeItem(K.token); LS.removeItem(K.me); LS.removeItem(K.tasks); LS.removeItem(K.patrol);
    stopPatrolWatch();
    renderSignIn(revoked ? t('signed_out_revoked') : null);
  }
  class ApiFail extends Error { constructor(status, body) { super(msg(body)); this.status = status; this.body = body; } }
  async function api(method, path, body, headers) {
    const hd = Object.assign({ Accept: 'application/json' }, headers || {});
    if (token()) hd.Authorization = 'Bearer ' + token();
    if (body !== undefined) hd['Content-Type'] = 'application/json';
    const resp = await fetch(path, { method, headers: hd, body: body === undefined ? undefined : JSON.stringify(body),
                                     cache: 'no-store' });
    const data = await resp.json().catch(() => null);
    if (resp.status === 401 && token()) { signedOutLocally(true); throw new ApiFail(401, data); }
    if (!resp.ok) throw new ApiFail(resp.status, data || { error: { message_zh: 'HTTP ' + resp.status, message_en: 'HTTP ' + resp.status } });
    return data;
  }
  async function loadMeta() {
    try { jset(K.meta, await api('GET', '/api/v1/meta')); } catch (e) { /* offline: the cached copy */ }
  }

  // -- the offline queue (IndexedDB) ---------------------------------------------------------------
  const DB = new Promise((resolve, reject) => {
    const r = indexedDB.open('gridwatch-m', 1);
    r.onupgradeneeded = () => {
      r.result.createObjectStore('queue', { keyPath: 'id', autoIncrement: true });
      r.result.createObjectStore('ids', { keyPath: 'local' });
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  function store(name, mode, fn) {
    return DB.then(db => new Promise((resolve, reject) => {
      const tx = db.transaction(name, mode);
      const req = fn(tx.objectStore(name));
      tx.oncomplete = () => resolve(req ? req.result : undefined);
      tx.onerror = () => reject(tx.error);
    }));
  }
  const qAll = () => store('queue', 'readonly', s => s.getAll());
  const qPut = item => store('queue', 'readwrite', s => s.put(item));
  const qDel = id => store('queue', 'readwrite', s => s.delete(id));
  const idGet = local => store('ids', 'readonly', s => s.get(local)).then(r => r && r.server);
  const idPut = (local, server) => store('ids', 'readwrite', s => s.put({ local, server }));

  /** Queue a write (sent with its own Idempotency-Key), then try to send it. */
  async function enqueue(type, path, body, extra) {
    const item = Object.assign({ type, path, body, key: 'm-' + uuid(), created: new Date().toISOString(),
                                 account: (me() || {}).account_id, attempts: 0, next_at: 0, error: null }, extra || {});
    item.id = await qPut(item);
    refreshQueueBadge();
    flush();
    return item;
  }
  let flushing = false, flushAgain = false, retryTimer = null;
  const sentListeners = [];
  async function flush() {
    if (!token()) return;
    if (flushing) { flushAgain = true; return; }   // queued meanwhile: one more pass when this one ends
    flushing = true;
    flushAgain = false;
    let delayed = false;
    try {
      const account = (me() || {}).account_id;
      for (const it of await qAll()) {
        if (it.error || it.account !== account) continue;
        if (it.next_at > Date.now()) { delayed = true; continue; }
        let path = it.path;
        const ref = path.match(/\{L:([\w-]+)\}/);
        if (ref) {
          const sid = await idGet(ref[1]);
          if (!sid) { delayed = true; continue; }   // waits for the entry it belongs to
          path = path.replace(ref[0], sid);
        }
        let resp;
        try {
          const w = wire(it.body);
          resp = await fetch(path, { method: 'POST', cache: 'no-store', body: w.body, headers: Object.assign(w.headers, {
            Accept: 'application/json', Authorization: 'Bearer ' + token(), 'Idempotency-Key': it.key }) });
        } catch (e) {   // no connection: try later (the online event, or the backoff)
          await backoff(it, e); delayed = true; break;
        }
        const data = await resp.json().catch(() => null);
        if (resp.status === 401) { signedOutLocally(true); break; }
        if (resp.ok) {
          if (it.provides) await idPut(it.provides, data.id);
          await qDel(it.id);
          sentListeners.forEach(fn => fn(it, data));
          continue;
        }
        if (resp.status >= 500 || resp.status === 429 || resp.status === 408) { await backoff(it, data); delayed = true; continue; }
        it.error = data && data.error ? data : { error: { message_zh: 'HTTP ' + resp.status, message_en: 'HTTP ' + resp.status } };
        await qPut(it);   // refused: kept, shown with the server's reason, never re-sent by itself
      }
    } finally {
      flushing = false;
      refreshQueueBadge();
      if (flushAgain) flush();
      else if (delayed) scheduleRetry();
    }
  }
  /** A queued body as sent: JSON, or with photos multipart/form-data (the photos as files: the
   *  server caps JSON bodies at 1 MB, since parsing base64 photos in JSON holds it up). */
  function wire(body) {
    if (!body.photos || !body.photos.length) return { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } };
    const fd = new FormData();
    for (const [k, v] of Object.entries(body)) {
      if (k === 'photos' || v === null || v === undefined) continue;
      fd.append(k, String(v));
    }
    body.photos.forEach((p, i) => {
      const bin = atob(p.data), bytes = new Uint8Array(bin.length);
      for (let j = 0; j < bin.length; j++) bytes[j] = bin.charCodeAt(j);
      const type = p.content_type || 'image/jpeg';
      fd.append('photos', new Blob([bytes], { type }), `photo-${i + 1}.${type.split('/')[1]}`);
    });
    return { body: fd, headers: {} };   // the browser sets the multipart boundary
  }
  async function backoff(it, why) {
    it.attempts += 1;
    it.next_at = Date.now() + Math.min(300, 2 ** Math.min(it.attempts, 9)) * 1000;
    it.last = msg(why);
    await qPut(it);
  }
  async function scheduleRetry() {
    clearTimeout(retryTimer);
    const items = (await qAll()).filter(i => !i.error);
    if (!items.length) return;
    const next = Math.min(...items.map(i => i.next_at || 0));
    retryTimer = setTimeout(flush, Math.max(2000, next - Date.now()));
  }
  async function refreshQueueBadge() {
    const n = (await qAll()).length;
    const b = document.getElementById('m-badge-me');
    if (b) { b.textContent = n; b.hidden = !n; }
    if (current.view === 'me') renderMe();
  }
  sentListeners.push((it, data) => {
    if (it.type === 'report' || it.type === 'diary_report') toast(t('sent', { n: data.number }), 'm-ok');
    if (current.view === 'tasks') render();
    if (current.view === 'diary') loadToday();   // the list only: what is being typed stays
    if (current.view === 'issue' && it.type === 'transition' && issueRefresh && String(it.issue) === String(issueRefresh.id)) {
      issueRefresh.refresh();
    }
  });

  // -- the network indicator ---------------------------------------------------------------------
  function showNet() {
    const el = document.getElementById('m-net');
    el.textContent = navigator.onLine ? t('online') : t('offline');
    el.className = 'm-net' + (navigator.onLine ? '' : ' off');
  }
  window.addEventListener('online', async () => {   // the signal is back: send everything now
    showNet();
    for (const q of await qAll()) if (!q.error && q.next_at) { q.next_at = 0; await qPut(q); }
    flush();
    if (current.view === 'tasks') render();
  });
  window.addEventListener('offline', showNet);

  // -- the map (Leaflet, local files) --------------------------------------------------------------
  const BASEMAP = ROOT.dataset.basemap || '';
  const BASEMAP_GCJ = ROOT.dataset.basemapCrs === 'gcj02';
  // WGS84 → GCJ-02 (for a GCJ-02 basemap: the pin is drawn where that map shows the place)
  function outOfChina(lon, lat) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }
  function tLat(x, y) {
    let r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2 / 3;
    r += (20 * Math.sin(y * Math.PI) + 40 * Math.sin(y / 3 * Math.PI)) * 2 / 3;
    return r + (160 * Math.sin(y / 12 * Math.PI) + 320 * Math.sin(y * Math.PI / 30)) * 2 / 3;
  }
  function tLon(x, y) {
    let r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2 / 3;
    r += (20 * Math.sin(x * Math.PI) + 40 * Math.sin(x / 3 * Math.PI)) * 2 / 3;
    return r + (150 * Math.sin(x / 12 * Math.PI) + 300 * Math.sin(x / 30 * Math.PI)) * 2 / 3;
  }
  function wgsToGcj(lon, lat) {
    if (outOfChina(lon, lat)) return [lon, lat];
    const a = 6378245.0, ee = 0.00669342162296594323;
    let dLat = tLat(lon - 105, lat - 35), dLon = tLon(lon - 105, lat - 35);
    const rad = lat / 180 * Math.PI, m = 1 - ee * Math.sin(rad) ** 2, sq = Math.sqrt(m);
    dLat = dLat * 180 / ((a * (1 - ee)) / (m * sq) * Math.PI);
    dLon = dLon * 180 / (a / sq * Math.cos(rad) * Math.PI);
    return [lon + dLon, lat + dLat];
  }
  // Leaflet is loaded after the first screen (it is not needed to sign in or to type a report)
  let leafletP = null;
  function leaflet() {
    if (window.L) return Promise.resolve(window.L);
    if (!leafletP) leafletP = new Promise((resolve, reject) => {
      document.head.append(h('link', { rel: 'stylesheet', href: ROOT.dataset.leafletCss }));
      const s = document.createElement('script');
      s.src = ROOT.dataset.leaflet; s.onload = () => resolve(window.L); s.onerror = () => { leafletP = null; reject(new Error('leaflet')); };
      document.head.append(s);
    });
    return leafletP;
  }
  let gridLayerData = null;
  function makeMap(div, lon, lat) {
    if (!window.L) return null;
    const map = L.map(div, { zoomControl: false, attributionControl: !!BASEMAP, tap: true }).setView([lat, lon], 17);
    if (BASEMAP) L.tileLayer(BASEMAP, { maxZoom: 19, attribution: ROOT.dataset.attribution || '' }).addTo(map);
    const can = (me() || { capabilities: [] }).capabilities.includes('view_map');
    if (can && navigator.onLine && !BASEMAP_GCJ) {
      const draw = fc => L.geoJSON(fc, { style: { color: '#1565c0', weight: 1, fillOpacity: 0.04 }, interactive: false }).addTo(map);
      if (gridLayerData) draw(gridLayerData);
      else api('GET', '/api/v1/grids?level=3').then(fc => { gridLayerData = fc; draw(fc); }).catch(() => {});
    }
    return map;
  }
  const toMap = (lon, lat) => BASEMAP_GCJ ? wgsToGcj(lon, lat) : [lon, lat];

  // -- photos: taken with the camera, resized on the phone ------------------------------------------
  async function resizePhoto(file) {
    const url = URL.createObjectURL(file);
    try {
      const img = await new Promise((resolve, reject) => {
        const i = new Image(); i.onload = () => resolve(i); i.onerror = () => reject(new Error('image')); i.src = url;
      });
      const scale = Math.min(1, 1600 / Math.max(img.naturalWidth, img.naturalHeight));
      const c = document.createElement('canvas');
      c.width = Math.max(1, Math.round(img.naturalWidth * scale));
      c.height = Math.max(1, Math.round(img.naturalHeight * scale));
      c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
      const limit = (jget(K.meta, {}).max_photo_bytes || 5242880) * 1.3;   // base64 is 4/3 of the bytes
      let q = 0.85, data = c.toDataURL('image/jpeg', q);
      while (data.length > limit && q > 0.3) { q -= 0.15; data = c.toDataURL('image/jpeg', q); }
      return data;
    } finally { URL.revokeObjectURL(url); }
  }
  function photoPicker(list) {
    const max = jget(K.meta, {}).max_photos || 9;
    const box = h('div', { class: 'm-photos', id: 'm-photos' });
    const label = h('label', { text: t('photos', { n: max }) });
    const input = h('input', { type: 'file', accept: 'image/*', capture: 'environment', id: 'm-photo-input', multiple: true,
                               'aria-label': t('add_photo') });
    const add = h('span', { class: 'm-btn m-file' }, t('add_photo'), input);
    function draw() {
      box.replaceChildren(...list.map((src, i) => h('div', { class: 'm-photo' }, h('img', { src, alt: '' }),
        h('button', { type: 'button', 'aria-label': t('remove'), onclick: () => { list.splice(i, 1); draw(); } }, '✕'))));
      add.hidden = list.length >= max;
    }
    input.addEventListener('change', async () => {
      for (const f of Array.from(input.files || [])) {
        if (list.length >= max) break;
        try { list.push(await resizePhoto(f)); } catch (e) { toast(t('error', { e: msg(e) }), 'm-err'); }
      }
      input.value = '';
      draw();
      box.dataset.count = list.length;
    });
    draw();
    return h('div', {}, label, box, add);
  }
  const photoBody = list => list.map(d => ({ content_type: 'image/jpeg', data: d.split(',', 2)[1] }));

  // -- where am I ---------------------------------------------------------------------------------
  function locateOnce() {
    return new Promise((resolve, reject) => {
      if (!navigator.geolocation) { reject(new Error('no geolocation')); return; }
      navigator.geolocation.getCurrentPosition(p => resolve(p.coords), e => reject(new Error(e.message || 'GPS')),
        { enableHighAccuracy: true, timeout: 15000, maximumAge: 10000 });
    });
  }

  // -- views --------------------------------------------------------------------------------------
  const current = { view: null, arg: null, cleanup: [] };
  const TABS = [['report', 'tab_report'], ['tasks', 'tab_tasks'], ['diary', 'tab_diary'], ['contact', 'tab_contact'],
                ['me', 'tab_me']];
  function renderNav() {
    NAV.hidden = false;
    NAV.replaceChildren(...TABS.map(([v, key]) => h('button', { type: 'button', id: 'm-tab-' + v,
      'aria-current': current.view === v || (v === 'tasks' && current.view === 'issue') ? 'page' : null,
      onclick: () => go(v) }, t(key), v === 'tasks' ? h('span', { class: 'm-badge', id: 'm-badge-tasks', hidden: true }) : null,
      v === 'me' ? h('span', { class: 'm-badge', id: 'm-badge-me', hidden: true }) : null)));
    refreshQueueBadge(); refreshTaskBadge();
  }
  function go(view, arg) { location.hash = arg ? view + '/' + arg : view; }
  function route() {
    const [view, arg] = (location.hash.replace(/^#/, '') || 'report').split('/');
    current.cleanup.forEach(fn => fn()); current.cleanup = [];
    current.view = ['report', 'tasks', 'issue', 'diary', 'contact', 'me'].includes(view) ? view : 'report';
    current.arg = arg || null;
    render();
  }
  function render() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.getElementById('m-title').textContent = t('app');
    document.getElementById('m-lang').textContent = t('lang_switch');
    showNet();
    if (!token()) { renderSignIn(); return; }
    renderNav();
    ({ report: renderReport, tasks: renderTasks, issue: renderIssue, diary: renderDiary, contact: renderContact,
       me: renderMe })[current.view]();
  }
  document.getElementById('m-lang').addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh'; LS.setItem(K.lang, lang); render();
  });

  // sign-in
  function renderSignIn(note) {
    NAV.hidden = true;
    document.getElementById('m-title').textContent = t('app');
    const err = h('p', { id: 'm-signin-msg', class: 'm-err', role: 'alert' }, note || '');
    const login = h('input', { type: 'text', id: 'm-login', name: 'login', autocomplete: 'username', autocapitalize: 'none', required: true });
    const pw = h('input', { type: 'password', id: 'm-password', name: 'password', autocomplete: 'current-password', required: true });
    const btn = h('button', { type: 'submit', class: 'm-primary', id: 'm-signin' }, t('sign_in'));
    const form = h('form', { class: 'm-card', id: 'm-signin-form', novalidate: true, onsubmit: async ev => {
      ev.preventDefault();
      if (!navigator.onLine) { err.textContent = t('sign_in_offline'); return; }
      btn.disabled = true; err.textContent = t('signing_in');
      try {
        const out = await api('POST', '/api/v1/device/sign-in', { login: login.value, password: pw.value, label: 'phone' });
        LS.setItem(K.token, out.token); jset(K.me, out.me);
        await loadMeta();
        current.view = null; go('report'); route(); flush();
      } catch (e) { err.textContent = msg(e.body || e); btn.disabled = false; }
    } }, h('h2', { text: t('sign_in') }), h('label', { for: 'm-login', text: t('login') }), login,
      h('label', { for: 'm-password', text: t('password') }), pw, btn, err);
    MAIN.replaceChildren(form);
  }

  // 上报 report (also: report from a diary finding)
  let reportDraft = null;
  function renderReport() {
    const meta = jget(K.meta, { domains: [] });
    const d = reportDraft || (reportDraft = { kind: 'problem', photos: [], lon: null, lat: null, acc: null, dragged: false,
                                              diary: null, description: '' });
    const fromDiary = current.arg && current.arg.startsWith('diary-') ? current.arg.slice(6) : null;
    const acc = h('p', { class: 'm-meta', id: 'm-accuracy' }, t('locating'));
    const grid = h('p', { class: 'm-meta m-grid', id: 'm-grid' }, '');
    const mapDiv = h('div', { class: 'm-map', id: 'm-report-map' });
    const seg = h('div', { class: 'm-seg', role: 'group', 'aria-label': t('kind') },
      ...['problem', 'sentiment'].map(k => h('button', { type: 'button', id: 'm-kind-' + k, 'aria-pressed': d.kind === k ? 'true' : 'false',
        onclick: ev => { d.kind = k; seg.querySelectorAll('button').forEach(b => b.setAttribute('aria-pressed', b === ev.currentTarget)); } },
        t('kind_' + k))));
    const domain = h('select', { id: 'm-domain', required: true }, h('option', { value: '' }, '—'),
      ...meta.domains.map(x => h('option', { value: x.code, selected: d.domain === x.code }, lang === 'zh' ? x.name_zh : x.name_en)));
    const title = h('input', { type: 'text', id: 'm-title-input', maxlength: 200, value: d.title || '' });
    const desc = h('textarea', { id: 'm-description', maxlength: 5000 });
    desc.value = d.description || '';
    const status = h('p', { id: 'm-report-msg', role: 'status' });
    const send = h('button', { type: 'submit', class: 'm-primary', id: 'm-send' }, t('send'));
    const form = h('form', { class: 'm-card', id: 'm-report-form', novalidate: true, onsubmit: async ev => {
      ev.preventDefault();
      d.domain = domain.value; d.title = title.value.trim(); d.description = desc.value;
      const missing = d.lon === null ? t('no_location') : !d.domain ? t('required', { f: t('domain') })
        : !d.title ? t('required', { f: t('title') }) : null;
      if (missing) { status.className = 'm-err'; status.textContent = missing; return; }
      const [lon, lat] = BASEMAP_GCJ && d.dragged ? [d.mlon, d.mlat] : [d.lon, d.lat];
      const body = { kind: d.kind, domain: d.domain, title: d.title, description: d.description, lon, lat,
                     crs: BASEMAP_GCJ && d.dragged ? 'gcj02' : 'wgs84', photos: photoBody(d.photos) };
      if (fromDiary) await enqueue('diary_report', '/api/v1/diary/' + fromDiary + '/report', body, { label: d.title });
      else await enqueue('report', '/api/v1/issues', Object.assign(body, { source: 'patrol' }), { label: d.title });
      reportDraft = null;
      toast(t('queued'), 'm-warn');
      if (fromDiary) go('diary'); else renderReport();
    } },
    h('h2', { text: fromDiary ? t('report_finding') : t('report_title') }), mapDiv, acc,
    h('button', { type: 'button', id: 'm-relocate', onclick: () => { d.dragged = false; startWatch(); } }, t('locate_again')),
    grid, h('label', { text: t('kind') }), seg, h('label', { for: 'm-domain', text: t('domain') }), domain,
    h('label', { for: 'm-title-input', text: t('title') }), title, h('label', { for: 'm-description', text: t('description') }), desc,
    photoPicker(d.photos), send, status);
    MAIN.replaceChildren(form);
    [domain, title, desc].forEach(el => el.addEventListener('input', () => {
      d.domain = domain.value; d.title = title.value; d.description = desc.value; }));

    let map = null, pin = null, circle = null, watch = null, lookupTimer = null;
    function place(lon, lat) {
      const [mx, my] = toMap(lon, lat);
      if (!map) {
        if (!window.L) { leaflet().then(() => { if (mapDiv.isConnected) place(d.lon ?? lon, d.lat ?? lat); }).catch(() => {}); return; }
        map = makeMap(mapDiv, mx, my);
        if (!map) return;
        pin = L.marker([my, mx], { draggable: true, autoPan: true, keyboard: false,
          icon: L.divIcon({ className: '', html: '<div class="m-pin"></div>', iconSize: [28, 28], iconAnchor: [14, 28] }) }).addTo(map);
        pin.on('dragend', () => {
          const ll = pin.getLatLng();
          d.dragged = true; stopWatch();
          d.mlon = ll.lng; d.mlat = ll.lat;
          if (BASEMAP_GCJ) { d.lon = ll.lng; d.lat = ll.lat; }   // sent as gcj02, converted by the server
          else { d.lon = ll.lng; d.lat = ll.lat; }
          acc.textContent = t('drag_hint');
          lookup();
        });
      } else { pin.setLatLng([my, mx]); map.setView([my, mx]); }
      if (circle) circle.remove();
      if (d.acc && !d.dragged) circle = L.circle([my, mx], { radius: d.acc, weight: 1, interactive: false }).addTo(map);
    }
    function lookup() {
      clearTimeout(lookupTimer);
      lookupTimer = setTimeout(async () => {
        if (!navigator.onLine) { grid.textContent = t('grid') + '：' + t('grid_offline'); grid.className = 'm-meta m-warn'; return; }
        const crs = BASEMAP_GCJ && d.dragged ? 'gcj02' : 'wgs84';
        try {
          const card = await api('GET', `/api/v1/responsible?lon=${d.lon}&lat=${d.lat}&crs=${crs}`);
          grid.className = 'm-meta m-grid';
          grid.textContent = card.block ? `${t('grid')}：${card.block.name}（${card.block.code}）` : t('grid_outside');
        } catch (e) { grid.className = 'm-meta m-err'; grid.textContent = t('grid') + '：' + msg(e.body || e); }
      }, 300);
    }
    function startWatch() {
      stopWatch();
      if (!navigator.geolocation) { acc.textContent = t('no_gps', { e: 'GPS' }); return; }
      acc.textContent = t('locating');
      watch = navigator.geolocation.watchPosition(p => {
        if (d.dragged) return;
        d.lon = p.coords.longitude; d.lat = p.coords.latitude; d.acc = p.coords.accuracy;
        acc.textContent = t('accuracy', { m: Math.round(p.coords.accuracy) }) + ' · ' + t('drag_hint');
        acc.dataset.accuracy = Math.round(p.coords.accuracy);
        place(d.lon, d.lat); lookup();
      }, e => { acc.textContent = t('no_gps', { e: e.message || 'GPS' }); if (d.lon === null) { place(113.628, 34.752); } },
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 5000 });
    }
    function stopWatch() { if (watch !== null) navigator.geolocation.clearWatch(watch); watch = null; }
    current.cleanup.push(stopWatch, () => map && map.remove());
    if (d.lon !== null) { place(d.lon, d.lat); lookup(); acc.textContent = d.dragged ? t('drag_hint') : t('accuracy', { m: Math.round(d.acc || 0) }); }
    if (!d.dragged) startWatch();
  }

  // 我的任务 my tasks
  async function fetchTasks() {
    const m = me();
    const reqs = [];
    if (m.official_id) reqs.push(api('GET', `/api/v1/issues?assignee_id=${m.official_id}&open=true&sort=due_at&page_size=200`));
    for (const b of m.blocks || []) reqs.push(api('GET', `/api/v1/issues?grid=${b}&open=true&sort=due_at&page_size=200`));
    const pages = await Promise.all(reqs);
    const byId = new Map();
    pages.forEach(p => p.items.forEach(i => byId.set(i.id, i)));
    const items = Array.from(byId.values()).sort((a, b) => (b.overdue - a.overdue)
      || ((a.due_at ? Date.parse(a.due_at) : Infinity) - (b.due_at ? Date.parse(b.due_at) : Infinity)) || (a.id - b.id));
    jset(K.tasks, { at: Date.now(), items });
    return items;
  }
  const seen = () => new Set(jget(K.seen, []));
  // new = assigned to me and not opened since it was (re)assigned
  function isNew(i) { const m = me(); return !!m && i.assignee_id === m.official_id && !seen().has(i.id + ':' + i.assigned_at); }
  function refreshTaskBadge() {
    const b = document.getElementById('m-badge-tasks');
    if (!b) return;
    const n = (jget(K.tasks, { items: [] }).items || []).filter(isNew).length;
    b.textContent = n; b.hidden = !n;
  }
  async function renderTasks() {
    const list = h('ul', { class: 'm-list', id: 'm-tasks' });
    const note = h('p', { class: 'm-meta', id: 'm-tasks-note' });
    MAIN.replaceChildren(h('div', { class: 'm-row' }, h('h2', { text: t('tasks_title') }),
      h('button', { type: 'button', id: 'm-tasks-refresh', onclick: () => renderTasks() }, t('refresh'))), note, list);
    let items = (jget(K.tasks, { items: [] }).items) || [];
    const draw = () => {
      list.replaceChildren(...items.map(i => {
        const cd = countdown(i.due_at);
        return h('li', { 'data-id': i.id }, h('button', { type: 'button', onclick: () => go('issue', i.id) },
          h('span', { class: 'm-item-title' }, isNew(i) ? h('span', { class: 'm-tag new' }, t('new')) : null, i.title),
          h('span', { class: 'm-item-sub' }, `${i.number} · ${i.status_zh && lang === 'zh' ? i.status_zh : i.status}`),
          h('span', { class: 'm-due' + (cd.late ? ' late' : '') }, cd.text)));
      }));
      if (!items.length) list.replaceChildren(h('li', {}, h('p', { class: 'm-meta', style: 'padding:12px' }, t('tasks_empty'))));
      refreshTaskBadge();
    };
    draw();
    if (!navigator.onLine) { note.textContent = t('tasks_offline'); return; }
    try { items = await fetchTasks(); if (current.view === 'tasks') draw(); }
    catch (e) { note.textContent = msg(e.body || e); }
  }
  const ACTIONS_SHOWN = ['sign', 'handle', 'feedback', 'request_extension', 'extend'];
  async function renderIssue() {
    const id = current.arg;
    let issue = jget(K.issue + id, null);
    const box = h('div', { id: 'm-issue' });
    MAIN.replaceChildren(h('button', { type: 'button', onclick: () => go('tasks') }, '‹ ' + t('back')), box);
    let shown = null;   // what is drawn: redrawn only when it changed (an open action form is kept)
    const draw = async () => {
      if (!issue) { box.replaceChildren(h('p', { class: 'm-meta' }, t('tasks_offline'))); return; }
      const pending = (await qAll()).filter(q => q.type === 'transition' && q.issue === issue.id);
      const sig = `${issue.id}:${issue.version}:${pending.length}:${lang}`;
      if (sig === shown && box.isConnected) return;
      shown = sig;
      const s = seen(); s.add(issue.id + ':' + issue.assigned_at); jset(K.seen, Array.from(s).slice(-500));
      const cd = countdown(issue.due_at);
      const acts = (issue.allowed_actions || []).filter(a => ACTIONS_SHOWN.includes(a));
      box.replaceChildren(
        h('div', { class: 'm-card' }, h('h2', { text: issue.title }),
          h('p', { class: 'm-meta' }, `${issue.number} · ${lang === 'zh' ? issue.status_zh : issue.status_en} · ${issue.grid.name || issue.grid.code}`),
          h('p', { class: 'm-due' + (cd.late ? ' late' : '') }, cd.text),
          issue.description ? h('p', {}, issue.description) : null,
          pending.length ? h('p', {}, h('span', { class: 'm-tag wait' }, t('queue')), pending.map(p => t('act_' + p.body.action)).join('、')) : null,
          h('div', { class: 'm-actions', id: 'm-actions' }, ...(pending.length ? [] : acts.map(a =>
            h('button', { type: 'button', id: 'm-act-' + a, onclick: () => actionForm(issue, a) }, t('act_' + a))))),
          !acts.length && !pending.length ? h('p', { class: 'm-meta', id: 'm-no-actions' }, t('no_actions')) : null,
          h('div', { id: 'm-action-form' })),
        h('div', { class: 'm-card' }, h('h3', { text: t('timeline') }), h('ul', { class: 'm-timeline', id: 'm-timeline' },
          ...(issue.timeline || []).map(e => h('li', {}, h('b', {}, `${lang === 'zh' ? e.action_zh : e.action_en} · ${fmtTime(e.at)}`),
            (e.actor && e.actor.name ? e.actor.name + ' ' : '') + (e.note || ''))))));
      refreshTaskBadge();
    };
    const refresh = async () => {
      if (!navigator.onLine) return;
      try { issue = await api('GET', '/api/v1/issues/' + id); jset(K.issue + id, issue); if (box.isConnected) draw(); }
      catch (e) { if (!issue) box.replaceChildren(h('p', { class: 'm-err' }, msg(e.body || e))); }
    };
    issueRefresh = { id, refresh };
    draw();
    await refresh();
  }
  let issueRefresh = null;
  function actionForm(issue, action) {
    const slot = document.getElementById('m-action-form');
    const photos = [];
    const note = h('textarea', { id: 'm-action-note', maxlength: 2000 });
    const dated = action === 'extend' || action === 'request_extension';
    const due = dated ? h('input', { type: 'date', id: 'm-new-due' }) : null;
    // the approver starts from the assignee's request still open (the last one after any extension)
    let asked = null;
    for (const e of issue.timeline || []) {
      if (e.action === 'request_extension') asked = e;
      else if (e.action === 'extend') asked = null;
    }
    if (action === 'extend' && asked && asked.data && asked.data.requested_due) due.value = asked.data.requested_due.slice(0, 10);
    const err = h('p', { class: 'm-err', role: 'alert' });
    slot.replaceChildren(h('form', { novalidate: true, onsubmit: async ev => {
      ev.preventDefault();
      if (dated && !due.value) { err.textContent = t('required', { f: t('new_due') }); return; }
      if (dated && !note.value.trim()) { err.textContent = t('required', { f: t('reason') }); return; }
      const body = { action, version: issue.version, note: note.value };
      if (due) body.new_due = due.value;
      if (action === 'feedback' && photos.length) body.photos = photoBody(photos);
      await enqueue('transition', `/api/v1/issues/${issue.id}/transitions`, body, { issue: issue.id, label: issue.title });
      toast(t('queued'), 'm-warn');
      renderIssue();
    } }, h('h3', { text: t('act_' + action) }),
      action === 'extend' && asked ? h('p', { class: 'm-meta', id: 'm-asked' },
        t('asked', { d: (asked.data.requested_due || '').slice(0, 10), r: asked.note || '' })) : null,
      h('label', { for: 'm-action-note', text: t(dated ? 'reason' : 'note') }), note,
      due ? [h('label', { for: 'm-new-due', text: t('new_due') }), due] : null,
      action === 'feedback' ? photoPicker(photos) : null,
      h('div', { class: 'm-row' }, h('button', { type: 'button', onclick: () => slot.replaceChildren() }, t('cancel')),
        h('button', { type: 'submit', class: 'm-primary', id: 'm-action-confirm' }, t('confirm'))), err));
    note.focus();
  }

  // 民情日记 patrol diary
  let patrolWatch = null;
  function stopPatrolWatch() { if (patrolWatch !== null) navigator.geolocation.clearWatch(patrolWatch); patrolWatch = null; }
  const patrol = () => jget(K.patrol, null);
  function startPatrolWatch() {
    if (patrolWatch !== null || !navigator.geolocation) return;
    patrolWatch = navigator.geolocation.watchPosition(p => {
      const st = patrol();
      if (!st) { stopPatrolWatch(); return; }
      const pt = [p.coords.longitude, p.coords.latitude];
      const last = st.buffer[st.buffer.length - 1] || st.last;
      const moved = !last || Math.hypot((pt[0] - last[0]) * 91000, (pt[1] - last[1]) * 111000) > 5;
      if (!moved) return;
      st.buffer.push(pt); st.count += 1; st.last = pt;
      jset(K.patrol, st);
      if (st.buffer.length >= 10 || Date.now() - st.flushed > 60000) flushTrack();
      const el = document.getElementById('m-patrol-state');
      if (el) el.textContent = t('patrol_on', { n: st.count });
    }, () => {}, { enableHighAccuracy: true, maximumAge: 5000 });
  }
  async function flushTrack() {
    const st = patrol();
    if (!st || !st.buffer.length) return;
    const points = st.buffer.splice(0, 2000);
    st.flushed = Date.now();
    jset(K.patrol, st);
    await enqueue('track', `/api/v1/diary/{L:${st.local}}/track`, { points }, { label: t('q_track', { n: points.length }) });
  }
  async function startPatrol() {
    let here = null;
    try { const c = await locateOnce(); here = [c.longitude, c.latitude]; } catch (e) { /* the server uses my block */ }
    const st = { local: 'p' + uuid(), started_at: new Date().toISOString(), count: here ? 1 : 0, buffer: [], last: here,
                 flushed: Date.now() };
    jset(K.patrol, st);
    const body = { kind: 'patrol', started_at: st.started_at };
    if (here) body.track = { type: 'Point', coordinates: here };
    await enqueue('diary', '/api/v1/diary', body, { provides: st.local, label: t('patrol_start') });
    startPatrolWatch();
    renderDiary();
  }
  async function endPatrol(counts) {
    await flushTrack();
    const st = patrol();
    stopPatrolWatch();
    await enqueue('end', `/api/v1/diary/{L:${st.local}}/end`, Object.assign({ ended_at: new Date().toISOString() }, counts),
                  { label: t('q_end') });
    LS.removeItem(K.patrol);
    renderDiary();
  }
  async function renderDiary() {
    const st = patrol();
    const num = (id, key) => [h('label', { for: id, text: t(key) }), h('input', { type: 'number', id, min: 0, max: 100000,
                                                                                  inputmode: 'numeric', value: 0 })];
    const findings = h('textarea', { id: 'm-findings', maxlength: 5000 });
    const card = h('div', { class: 'm-card', id: 'm-patrol' }, h('h2', { text: t('diary_title') }));
    if (!st) card.append(h('button', { type: 'button', class: 'm-primary', id: 'm-patrol-start', onclick: startPatrol }, t('patrol_start')));
    else {
      startPatrolWatch();
      card.append(h('p', { id: 'm-patrol-state', class: 'm-ok' }, t('patrol_on', { n: st.count })),
        h('div', { class: 'm-counts' }, h('div', {}, ...num('m-households', 'households')), h('div', {}, ...num('m-shops', 'shops')),
          h('div', {}, ...num('m-firms', 'firms'))),
        h('label', { for: 'm-findings', text: t('findings') }), findings,
        h('button', { type: 'button', class: 'm-primary', id: 'm-patrol-stop', onclick: () => {
          const n = id => Math.max(0, Math.min(100000, parseInt(document.getElementById(id).value, 10) || 0));
          endPatrol({ households: n('m-households'), shops: n('m-shops'), firms: n('m-firms'), findings: findings.value });
        } }, t('patrol_stop')));
    }
    MAIN.replaceChildren(card, h('h3', { text: t('today') }), h('ul', { class: 'm-list', id: 'm-diary-today' }));
    loadToday();
  }
  let todaySeq = 0;
  async function loadToday() {
    const seq = ++todaySeq;
    const shown = document.getElementById('m-diary-today');
    if (!shown) return;
    const today = h('ul', { class: 'm-list', id: 'm-diary-today' });
    const done = () => { if (seq === todaySeq && shown.isConnected) shown.replaceWith(today); };
    const pending = (await qAll()).filter(q => q.type === 'diary' || q.type === 'end');
    const rows = pending.map(q => h('li', {}, h('p', { style: 'padding:10px 12px;margin:0' }, h('span', { class: 'm-tag wait' }, t('queue')),
      q.type === 'diary' ? `${t('diary_title')} ${fmtTime(q.body.started_at)}` : t('q_end'))));
    today.replaceChildren(...rows);
    const m = me();
    if (!navigator.onLine || !m.official_id) {
      if (!rows.length) today.append(h('li', {}, h('p', { class: 'm-meta', style: 'padding:12px' }, t('today_empty'))));
      done();
      return;
    }
    const day = new Intl.DateTimeFormat('en-CA', { timeZone: tz() }).format(new Date());
    try {
      const page = await api('GET', `/api/v1/diary?official_id=${m.official_id}&from=${day}T00:00:00&page_size=50`);
      page.items.forEach(e => today.append(h('li', { 'data-id': e.id }, h('div', { style: 'padding:10px 12px' },
        h('span', { class: 'm-item-title' }, `${t('diary_title')} ${fmtTime(e.started_at)}–${e.ended_at ? fmtTime(e.ended_at) : '…'}`),
        h('span', { class: 'm-item-sub' }, `${t('households')} ${e.households} · ${t('shops')} ${e.shops} · ${t('firms')} ${e.firms}`),
        e.findings ? h('span', { class: 'm-item-sub' }, e.findings) : null,
        e.ended_at && !e.issue_id ? h('button', { type: 'button', class: 'm-report-finding', onclick: () => {
          reportDraft = { kind: 'problem', photos: [], lon: null, lat: null, acc: null, dragged: false, description: e.findings,
                          title: (e.findings || '').split('\n')[0].slice(0, 60) };
          go('report', 'diary-' + e.id);
        } }, t('report_finding')) : null))));
      if (!today.children.length) today.append(h('li', {}, h('p', { class: 'm-meta', style: 'padding:12px' }, t('today_empty'))));
    } catch (e) { today.append(h('li', {}, h('p', { class: 'm-err' }, msg(e.body || e)))); }
    done();
  }

  // 该找谁 who is responsible here
  async function renderContact() {
    const box = h('div', { class: 'm-card', id: 'm-contact' }, h('p', { class: 'm-meta' }, t('locating')));
    MAIN.replaceChildren(h('h2', { text: t('contact_title') }), box,
      h('button', { type: 'button', id: 'm-contact-here', onclick: renderContact }, t('contact_here')));
    if (!navigator.onLine) { box.replaceChildren(h('p', { class: 'm-warn' }, t('offline'))); return; }
    try {
      const c = await locateOnce();
      const card = await api('GET', `/api/v1/responsible?lon=${c.longitude}&lat=${c.latitude}`);
      if (!card.block) { box.replaceChildren(h('p', {}, t('contact_none'))); return; }
      const people = (card.officials || []).map(o => h('div', { class: 'm-person' },
        h('b', {}, o.name || '—'), ' ', h('span', { class: 'm-meta' }, `${lang === 'zh' ? o.role_zh : o.role_en} · ${o.title || ''}`),
        o.phone ? h('div', {}, h('a', { href: 'tel:' + o.phone }, `${t('call')} ${o.phone}`)) : null));
      box.replaceChildren(h('p', { class: 'm-grid', id: 'm-contact-grid' },
        [card.street, card.community, card.block].filter(Boolean).map(g => g.name).join(' › ')),
        ...people, card.office_phone ? h('div', { class: 'm-person' }, h('a', { href: 'tel:' + card.office_phone }, `${t('call')} ${card.office_phone}`)) : null);
    } catch (e) { box.replaceChildren(h('p', { class: 'm-err' }, msg(e.body || e))); }
  }

  // 我的 me: the queue, language, sign-out
  async function renderMe() {
    const m = me();
    if (!m) return;
    const items = await qAll();
    if (current.view !== 'me') return;
    const queue = h('ul', { class: 'm-list', id: 'm-queue' }, ...items.map(q => h('li', { 'data-type': q.type },
      h('div', { style: 'padding:10px 12px' },
        q.error ? h('span', { class: 'm-tag fail' }, t('failed')) : h('span', { class: 'm-tag wait' }, t('queue')),
        h('span', { class: 'm-item-title' }, `${q.type === 'transition' ? t('act_' + q.body.action) : t('q_' + q.type, { n: '' })} ${q.label || ''}`),
        h('span', { class: 'm-item-sub' }, fmtTime(q.created) + (q.error ? ' · ' + msg(q.error)
          : q.next_at > Date.now() ? ' · ' + t('retry_at', { t: fmtTime(new Date(q.next_at).toISOString()) }) : '')),
        q.error ? h('button', { type: 'button', onclick: async () => { await qDel(q.id); refreshQueueBadge(); } }, t('discard')) : null))));
    MAIN.replaceChildren(
      h('div', { class: 'm-card' }, h('h2', { text: m.official_name || m.display_name || m.login }),
        h('p', { class: 'm-meta' }, `${m.login}${m.blocks && m.blocks.length ? ' · ' + m.blocks.join(', ') : ''}`)),
      h('div', { class: 'm-row' }, h('h3', { text: t('queue') }),
        h('button', { type: 'button', id: 'm-send-now', onclick: async () => {
          for (const q of await qAll()) if (!q.error) { q.next_at = 0; await qPut(q); }
          flush();
        } }, t('send_now'))),
      items.length ? queue : h('p', { class: 'm-meta', id: 'm-queue-empty' }, t('queue_empty')),
      h('div', { class: 'm-card' }, h('label', { text: t('language') }), h('div', { class: 'm-seg' },
        h('button', { type: 'button', 'aria-pressed': lang === 'zh' ? 'true' : 'false', onclick: () => { lang = 'zh'; LS.setItem(K.lang, lang); render(); } }, '中文'),
        h('button', { type: 'button', 'aria-pressed': lang === 'en' ? 'true' : 'false', onclick: () => { lang = 'en'; LS.setItem(K.lang, lang); render(); } }, 'English'))),
      h('button', { type: 'button', class: 'm-primary', id: 'm-sign-out', onclick: async () => {
        try { await api('POST', '/api/v1/device/sign-out'); } catch (e) { /* offline: forgotten here; revoke it from the dashboard */ }
        signedOutLocally(false);
      } }, t('sign_out')),
      h('p', { class: 'm-meta' }, t('version', { v: ROOT.dataset.version })));
  }

  // -- start --------------------------------------------------------------------------------------
  window.addEventListener('hashchange', route);
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('/m/sw.js', { scope: '/m/' }).catch(() => {});
  route();
  if (token()) {
    loadMeta();
    flush();
    if (patrol()) startPatrolWatch();
    // new assignments: the task list, every two minutes while open
    const poll = () => { if (navigator.onLine && token() && me()) fetchTasks().then(refreshTaskBadge).catch(() => {}); };
    poll();
    setInterval(poll, 120000);
  }
  window.gwPhone = { flush, queue: qAll };   // for the browser tests
}());
