// The console's core: a DOM builder, the API client, the confirmation
// dialog, the live event stream and the router. Pages live in the other
// scripts and register themselves in TP.pages.
'use strict';
const TP = (window.TP = { pages: [], session: null });

// Builds an element. Text is always set as text, never parsed as HTML.
TP.h = function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
};
const h = TP.h;

TP.ApiError = class extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
};

// Calls the API with the session cookie. Unsafe methods echo the CSRF
// token. A non-2xx answer throws with the message of the error envelope.
TP.api = async function api(method, path, body, retried) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && TP.session) headers['X-CSRF-Token'] = TP.session.csrf_token;
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new TP.ApiError(0, 'unreachable', 'The service cannot be reached: ' + e.message);
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!res.ok) {
    const env = json && json.error ? json.error : { code: 'http_' + res.status, message: text || res.statusText };
    // Signed in again in another tab: take the new session's token, once.
    if (env.code === 'csrf_failed' && !retried) {
      try {
        TP.session = await TP.api('GET', '/console/session');
        return await TP.api(method, path, body, true);
      } catch (_) { /* the first refusal stands */ }
    }
    if (res.status === 401 && TP.session && path !== '/console/session') {
      TP.session = null;
      TP.closeEvents();
      location.hash = '#/sign-in';
    }
    throw new TP.ApiError(res.status, env.code, env.message);
  }
  return json;
};

// What identifies a focusable element across a redraw: its id, or its tag,
// name and text, and which of its likes it is.
function focusKey(el, root) {
  if (el.id) return { id: el.id };
  const sig = (x) => `${x.tagName}|${x.getAttribute('name') || ''}|${x.textContent.trim()}`;
  const mine = sig(el);
  const likes = [...root.querySelectorAll(el.tagName)].filter((x) => sig(x) === mine);
  return { sig: mine, tag: el.tagName, nth: likes.indexOf(el) };
}
function findKey(key, root) {
  if (key.id) return root.querySelector('#' + CSS.escape(key.id));
  const sig = (x) => `${x.tagName}|${x.getAttribute('name') || ''}|${x.textContent.trim()}`;
  const likes = [...root.querySelectorAll(key.tag)].filter((x) => sig(x) === key.sig);
  return likes[Math.min(key.nth, likes.length - 1)] || null;
}
// Replaces `box`'s children. Where the keyboard focus was inside it, the
// focus goes to the same control in the new children (or the first usable
// one), so a live redraw never drops a keyboard user back to the page top.
TP.swap = function swap(box, ...kids) {
  const active = document.activeElement;
  const had = active && active !== box && box.contains(active) ? focusKey(active, box) : null;
  box.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false)
    .map((k) => k instanceof Node ? k : String(k)));
  if (!had) return;
  let next = findKey(had, box);
  if (!next || next.disabled) {
    next = [...box.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
      .find((x) => !x.disabled && x.tabIndex >= 0) || null;
  }
  if (next) next.focus({ preventScroll: true });
};

// Shows an error's envelope message in `where` (or the page's alert line).
TP.showError = function showError(err, where) {
  const text = err instanceof TP.ApiError ? `${err.message} (${err.code})` : String(err && err.message || err);
  const target = where || document.getElementById('flash');
  target.textContent = text;
  if (!where) window.scrollTo({ top: 0 });
};
TP.clearFlash = () => { document.getElementById('flash').textContent = ''; };

// Today's times show the time alone; older ones the date too.
TP.fmtTime = (iso) => {
  if (!iso) return '—';
  const d = new Date(iso);
  const today = d.toDateString() === new Date().toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
};
TP.badge = (state) => h('span', { class: `badge s-${state}` }, state);
TP.short = (id) => id ? String(id).slice(0, 8) + '…' + String(id).slice(-4) : '—';
TP.table = (heads, rows, empty) => h('div', { class: 'table-wrap' },
  h('table', {}, h('thead', {}, h('tr', {}, heads.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: heads.length, class: 'muted' }, empty || 'None')))));
// A bar of `value` against `max`, with the figures as text beside it.
TP.bar = (label, value, max, hot) => {
  const fill = h('span');
  const pct = max > 0 ? Math.min(100, (100 * value) / max) : 0;
  fill.style.width = pct.toFixed(1) + '%';
  return h('div', { class: 'barline' }, h('span', {}, label),
    h('div', { class: 'bar' + (hot && pct >= 90 ? ' hot' : ''), role: 'img', 'aria-label': `${label}: ${value} of ${max}` }, fill),
    h('span', {}, `${value} / ${max}`));
};
// A form whose submit runs `fn(values)`, showing its error inline.
TP.form = (attrs, fields, submitLabel, fn) => {
  const error = h('p', { class: 'error', role: 'alert' });
  const button = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const form = h('form', Object.assign({ class: 'inline' }, attrs), fields, button, error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    button.disabled = true;
    try { await fn(Object.fromEntries(new FormData(form).entries()), form); }
    catch (e) { TP.showError(e, error); }
    finally { button.disabled = false; }
  });
  return form;
};
TP.field = (label, attrs) => h('label', {}, label, h('input', attrs));
TP.select = (label, name, options, value) => h('label', {}, label,
  h('select', { name }, options.map((o) => h('option', { value: o, selected: o === value }, o))));

// The confirmation dialog. It names what it acts on; with `typed`, the
// operator must type that name before the action is allowed.
TP.confirm = function confirm({ title, text, action, typed, extra, run, blocked }) {
  const dialog = document.getElementById('confirm');
  const input = document.getElementById('confirm-typed');
  const ok = document.getElementById('confirm-ok');
  const error = document.getElementById('confirm-error');
  const opener = document.activeElement;
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-typed-label').hidden = !typed;
  document.getElementById('confirm-expected').textContent = typed || '';
  const extraBox = document.getElementById('confirm-extra');
  extraBox.replaceChildren(...(extra ? [extra] : []));
  input.value = '';
  error.textContent = '';
  ok.textContent = action;
  ok.disabled = !!typed || !!blocked;
  input.oninput = () => { ok.disabled = !!blocked || input.value.trim() !== typed; };
  document.getElementById('confirm-cancel').onclick = () => dialog.close();
  document.getElementById('confirm-form').onsubmit = async (ev) => {
    ev.preventDefault();
    if (blocked || (typed && input.value.trim() !== typed)) return;
    ok.disabled = true;
    try {
      await run(extraBox);
      dialog.close();
      // The button that opened the dialog may be gone (the page redrew its
      // actions): the keyboard user continues from the page's heading.
      if (!document.body.contains(opener)) {
        const heading = document.querySelector('#main h1');
        if (heading) { heading.tabIndex = -1; heading.focus(); }
      }
    }
    catch (e) { TP.showError(e, error); }
    finally { ok.disabled = false; }
  };
  dialog.showModal();
  (typed ? input : ok).focus();
};

// The live event stream (`GET /v1/events`), shared by every page. Pages
// subscribe with TP.onEvent; a page's subscriptions end when it is left.
const EVENT_TYPES = ['operation.started', 'operation.succeeded', 'operation.failed', 'operation.cancelled',
  'operation.taken_over', 'tenant.created', 'tenant.suspended', 'tenant.resumed', 'tenant.deleted',
  'tenant.restored', 'tenant.purged', 'tenant.moved', 'tenant.failed', 'tenant.provisioning', 'tenant.active',
  'tenant.deleting', 'migration_run.finished', 'tenant.drifted'];
let source = null;
const subscribers = new Set();
TP.openEvents = () => {
  if (source || !TP.session || TP.session.role !== 'super_admin') return;
  source = new EventSource('/v1/events');
  const deliver = (msg) => {
    let event;
    try { event = JSON.parse(msg.data); } catch (_) { return; }
    for (const fn of subscribers) fn(event);
  };
  source.onmessage = deliver;
  // The browser reconnects by itself; the header says while it cannot.
  const status = document.getElementById('live-status');
  source.onopen = () => { status.textContent = 'live updates on'; };
  source.onerror = () => {
    status.textContent = source && source.readyState === EventSource.CLOSED
      ? 'live updates stopped: reload the page' : 'live updates lost: reconnecting…';
  };
  for (const type of EVENT_TYPES) source.addEventListener(type, deliver);
};
TP.closeEvents = () => {
  if (source) source.close();
  source = null;
  document.getElementById('live-status').textContent = '';
};
let pageCleanups = [];
TP.onEvent = (fn) => { subscribers.add(fn); pageCleanups.push(() => subscribers.delete(fn)); };
// Runs `fn` every `ms` until the page is left, or the returned stop is called.
TP.every = (ms, fn) => {
  const t = setInterval(fn, ms);
  const stop = () => clearInterval(t);
  pageCleanups.push(stop);
  return stop;
};
// Wraps a loader so that only its latest call may draw: an older answer
// that arrives late is dropped, and a call made while one runs waits for it.
TP.latest = (load) => {
  let seq = 0;
  return (...args) => {
    const mine = ++seq;
    return load(() => mine === seq, ...args);
  };
};
// Runs `fn` at most once per `ms`, for refreshes that events trigger.
TP.throttled = (ms, fn) => {
  let timer = null;
  return () => { if (!timer) timer = setTimeout(() => { timer = null; fn(); }, ms); };
};

TP.isSuper = () => TP.session && TP.session.role === 'super_admin';
TP.home = () => TP.isSuper() ? '#/fleet' : `#/tenants/${TP.session.tenant_id}`;

function renderNav() {
  const nav = document.getElementById('nav');
  const links = TP.isSuper()
    ? [['#/fleet', 'Fleet'], ['#/migrations', 'Migrations'], ['#/servers', 'Servers']]
    : [[TP.home(), 'My tenant']];
  nav.replaceChildren(...links.map(([href, text]) => h('a', { href }, text)));
  document.getElementById('who').textContent = `${TP.session.user_id} · ${TP.session.role}`;
  document.getElementById('top').hidden = false;
}

function markCurrent() {
  for (const a of document.querySelectorAll('#nav a')) {
    const here = location.hash.startsWith(a.getAttribute('href'));
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

let renderSeq = 0;
TP.render = async function render() {
  const seq = ++renderSeq;
  for (const fn of pageCleanups) fn();
  pageCleanups = [];
  TP.clearFlash();
  const main = document.getElementById('main');
  if (!TP.session && location.hash !== '#/sign-in') {
    try { TP.session = await TP.api('GET', '/console/session'); }
    catch (_) { location.hash = '#/sign-in'; return; }
  }
  if (TP.session) { renderNav(); TP.openEvents(); } else { document.getElementById('top').hidden = true; }
  const hash = location.hash && location.hash !== '#/' ? location.hash : (TP.session ? TP.home() : '#/sign-in');
  for (const [pattern, page] of TP.pages) {
    const m = hash.match(pattern);
    if (!m) continue;
    const view = h('div');
    main.replaceChildren(view);
    markCurrent();
    try { await page(view, ...m.slice(1)); }
    catch (e) { if (seq === renderSeq) TP.showError(e); }
    if (seq === renderSeq) {
      const heading = main.querySelector('h1');
      document.title = (heading ? heading.textContent + ' · ' : '') + 'tenant-plane console';
      // Keyboard users start at the new page, unless the page chose a field.
      if (!main.contains(document.activeElement) || document.activeElement === main) main.focus({ preventScroll: true });
    }
    return;
  }
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: TP.home() }, 'Back')));
};

TP.signOut = async () => {
  try { await TP.api('DELETE', '/console/session'); } catch (e) { TP.showError(e); return; }
  document.getElementById('flash').textContent = '';
  TP.session = null;
  TP.closeEvents();
  location.hash = '#/sign-in';
};
