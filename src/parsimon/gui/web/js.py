"""JavaScript run inside pages: a virtual clock and the snapshot that builds an observation.

``VIRTUAL_CLOCK`` is installed before any page script (``add_init_script``). It replaces ``Date``,
``performance.now``, ``setTimeout``/``setInterval`` and ``requestAnimationFrame`` with a clock that only
moves when the environment calls ``window.__parsimonClock.advance(ms)``, running the due callbacks in
order. Animations, delays and episode timers then happen at the same virtual instants on every run, so a
seeded episode is deterministic however loaded the machine is.

``SNAPSHOT`` (called with the selectors to hide) numbers every element with ``data-pid`` (kept across
steps, new elements get new numbers), and returns the element table (tag, role, name, text, value,
checked, bounding box, interactive, visible), the page's HTML with the live form state copied into
attributes (``value``, ``checked``, ``selected``, a textarea's text; ``page.content()`` does not serialise
these), the focused element, the scroll position and the viewport.
"""

from __future__ import annotations

__all__ = ["SNAPSHOT", "VIRTUAL_CLOCK"]

VIRTUAL_CLOCK = r"""
(() => {
  if (window.__parsimonClock) return;
  const RealDate = Date;
  const EPOCH = 1767225600000;  // 2026-01-01T00:00:00Z
  let now = EPOCH, nextId = 1;
  const timers = new Map();
  function add(fn, ms, args, interval) {
    const id = nextId++;
    const delay = Math.max(0, Number(ms) || 0);
    timers.set(id, {id, due: now + delay, fn, args, interval: interval ? Math.max(1, delay) : 0});
    return id;
  }
  window.setTimeout = (fn, ms, ...args) => add(fn, ms, args, false);
  window.setInterval = (fn, ms, ...args) => add(fn, ms, args, true);
  window.clearTimeout = window.clearInterval = (id) => { timers.delete(id); };
  window.requestAnimationFrame = (cb) => add(() => cb(now - EPOCH), 16, [], false);
  window.cancelAnimationFrame = (id) => { timers.delete(id); };
  function FakeDate(...a) {
    if (!(this instanceof FakeDate)) return new RealDate(now).toString();
    return a.length ? new RealDate(...a) : new RealDate(now);
  }
  FakeDate.prototype = RealDate.prototype;
  FakeDate.now = () => now;
  FakeDate.parse = RealDate.parse;
  FakeDate.UTC = RealDate.UTC;
  window.Date = FakeDate;
  if (window.performance) window.performance.now = () => now - EPOCH;
  window.__parsimonClock = {
    now: () => now,
    pending: () => timers.size,
    advance(ms) {
      const target = now + Math.max(0, ms);
      let runs = 0;
      while (runs < 200000) {
        let next = null;
        for (const t of timers.values()) {
          if (t.due <= target && (next === null || t.due < next.due || (t.due === next.due && t.id < next.id))) next = t;
        }
        if (next === null) break;
        now = Math.max(now, next.due);
        if (next.interval) next.due = now + next.interval; else timers.delete(next.id);
        runs++;
        try {
          if (typeof next.fn === 'function') next.fn(...next.args); else (0, eval)(String(next.fn));
        } catch (e) { console.error(e); }
      }
      now = target;
      return runs;
    },
  };
})();
"""

SNAPSHOT = r"""
(hidden) => {
  const W = window;
  if (W.__parsimonNextPid === undefined) W.__parsimonNextPid = 0;
  const hiddenEls = new Set();
  for (const sel of hidden) for (const el of document.querySelectorAll(sel)) hiddenEls.add(el);
  const INTERACTIVE_TAGS = new Set(['a', 'button', 'input', 'select', 'textarea', 'option', 'summary', 'label']);
  const INTERACTIVE_ROLES = new Set(['button', 'link', 'checkbox', 'radio', 'textbox', 'combobox', 'option',
    'menuitem', 'tab', 'switch', 'slider', 'spinbutton', 'listbox', 'treeitem', 'searchbox', 'gridcell']);
  const IMPLICIT = {a: 'link', button: 'button', select: 'combobox', textarea: 'textbox', option: 'option',
    h1: 'heading', h2: 'heading', h3: 'heading', h4: 'heading', h5: 'heading', h6: 'heading', img: 'img',
    ul: 'list', ol: 'list', li: 'listitem', table: 'table', tr: 'row', td: 'cell', th: 'columnheader',
    form: 'form', label: 'label', p: 'paragraph', canvas: 'canvas', svg: 'graphics', nav: 'navigation'};
  const INPUT_ROLE = {checkbox: 'checkbox', radio: 'radio', button: 'button', submit: 'button', reset: 'button',
    range: 'slider', number: 'spinbutton', search: 'searchbox'};
  const oneLine = (s) => String(s || '').replace(/\s+/g, ' ').trim();
  function role(el, tag) {
    const r = el.getAttribute('role');
    if (r) return r.split(' ')[0];
    if (tag === 'input') return INPUT_ROLE[(el.type || 'text').toLowerCase()] || 'textbox';
    return IMPLICIT[tag] || 'generic';
  }
  function name(el, tag) {
    const aria = el.getAttribute('aria-label');
    if (aria) return oneLine(aria);
    const by = el.getAttribute('aria-labelledby');
    if (by) {
      const t = by.split(/\s+/).map((id) => document.getElementById(id)).filter(Boolean).map((e) => e.textContent);
      if (t.length) return oneLine(t.join(' '));
    }
    if (tag === 'input' || tag === 'select' || tag === 'textarea') {
      if (el.id) {
        const lab = document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
        if (lab) return oneLine(lab.textContent);
      }
      const wrap = el.closest('label');
      if (wrap) return oneLine(wrap.textContent);
      if (el.type === 'submit' || el.type === 'button' || el.type === 'reset') return oneLine(el.value);
      return oneLine(el.getAttribute('placeholder') || el.getAttribute('title') || el.getAttribute('name') || '');
    }
    if (tag === 'img') return oneLine(el.getAttribute('alt') || el.getAttribute('title') || '');
    return oneLine(el.getAttribute('title') || '');
  }
  function ownText(el) {
    let t = '';
    for (const c of el.childNodes) if (c.nodeType === 3) t += c.textContent + ' ';
    return oneLine(t);
  }
  const vw = W.innerWidth, vh = W.innerHeight;
  const elements = [];
  const all = document.body ? document.body.querySelectorAll('*') : [];
  const skip = new Set();
  for (const el of all) {
    if (!el.hasAttribute('data-pid')) el.setAttribute('data-pid', String(W.__parsimonNextPid++));
    const tag = el.tagName.toLowerCase();
    if (tag === 'script' || tag === 'style' || tag === 'noscript' || tag === 'link' || tag === 'meta') continue;
    let hiddenHere = hiddenEls.has(el) || (el.parentElement && skip.has(el.parentElement));
    const cs = W.getComputedStyle(el);
    if (hiddenHere || cs.display === 'none') { skip.add(el); continue; }
    const r = el.getBoundingClientRect();
    const visible = cs.visibility !== 'hidden' && cs.opacity !== '0' && r.width > 0 && r.height > 0 &&
      r.right > 0 && r.bottom > 0 && r.left < vw && r.top < vh;
    const rl = role(el, tag);
    const interactive = (INTERACTIVE_TAGS.has(tag) && !(tag === 'input' && el.type === 'hidden')) ||
      INTERACTIVE_ROLES.has(rl) || el.hasAttribute('onclick') || el.isContentEditable ||
      (el.hasAttribute('tabindex') && el.getAttribute('tabindex') !== '-1') ||
      (cs.cursor === 'pointer' && !(el.parentElement && W.getComputedStyle(el.parentElement).cursor === 'pointer'));
    const rec = {pid: Number(el.getAttribute('data-pid')), tag, role: rl, name: name(el, tag),
      text: ownText(el).slice(0, 200), interactive: !!interactive && !el.disabled, visible,
      bbox: [r.left, r.top, r.width, r.height], parent: el.parentElement && el.parentElement.hasAttribute('data-pid')
        ? Number(el.parentElement.getAttribute('data-pid')) : null,
      id: el.id || null, cls: (typeof el.className === 'string' ? el.className : '') || null};
    if (tag === 'input' || tag === 'textarea' || tag === 'select') {
      rec.value = el.value;
      rec.type = tag === 'input' ? (el.type || 'text') : tag;
    }
    if (tag === 'input' && (el.type === 'checkbox' || el.type === 'radio')) rec.checked = el.checked;
    if (tag === 'option') rec.selected = el.selected;
    if (tag === 'select') rec.options = Array.from(el.options).map((o) => oneLine(o.textContent));
    if (el.disabled) rec.disabled = true;
    if (el.hasAttribute('data-irreversible')) rec.irreversible = true;
    if (cs.backgroundColor && cs.backgroundColor !== 'rgba(0, 0, 0, 0)' && cs.backgroundColor !== 'transparent') {
      rec.bg = cs.backgroundColor;
    }
    if (el.scrollHeight > el.clientHeight + 2 && ['auto', 'scroll'].includes(cs.overflowY)) rec.scrollable = true;
    elements.push(rec);
  }
  // the frozen DOM: a clone with live form state written into attributes, hidden parts removed
  const clone = document.documentElement.cloneNode(true);
  const live = document.documentElement.querySelectorAll('input, textarea, select, option');
  const cloned = clone.querySelectorAll('input, textarea, select, option');
  for (let i = 0; i < live.length && i < cloned.length; i++) {
    const a = live[i], b = cloned[i];
    const tag = a.tagName.toLowerCase();
    if (tag === 'input') {
      if (a.type === 'checkbox' || a.type === 'radio') {
        if (a.checked) b.setAttribute('checked', ''); else b.removeAttribute('checked');
      } else if (a.type !== 'file') b.setAttribute('value', a.value);
    } else if (tag === 'textarea') b.textContent = a.value;
    else if (tag === 'option') { if (a.selected) b.setAttribute('selected', ''); else b.removeAttribute('selected'); }
  }
  for (const el of clone.querySelectorAll('script')) el.remove();
  // Playwright's screenshots leave an empty style attribute on form fields (caret hiding)
  for (const el of clone.querySelectorAll('[style=""]')) el.removeAttribute('style');
  for (const sel of hidden) for (const el of clone.querySelectorAll(sel)) el.remove();
  const f = document.activeElement;
  return {elements, html: '<!DOCTYPE html>\n' + clone.outerHTML, url: location.href, title: document.title,
    focused: f && f !== document.body && f.hasAttribute('data-pid') ? Number(f.getAttribute('data-pid')) : null,
    scroll: [W.scrollX, W.scrollY], viewport: [vw, vh]};
}
"""
