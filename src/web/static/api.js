// What every card's script shares (loaded first, deferred, so it runs before them): the
// dashboard API from the browser (JSON in and out, the session's anti-forgery token on every
// state-changing request), a busy button, el() for building elements with DOM calls, local times and a card's
// live-region messages. Served as a static file: the content security policy allows no
// inline script.
'use strict';

(function () {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute('content') || '' : '';

  /** Calls the dashboard API; resolves to {status, data, retryAfter} or rejects on network failure. */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') {
      headers['X-CSRF-Token'] = csrf;
      headers['Content-Type'] = 'application/json';
    }
    const res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: method === 'GET' ? undefined : JSON.stringify(body || {}),
    });
    let data = {};
    try {
      data = await res.json();
    } catch {
      data = {};
    }
    return { status: res.status, data, retryAfter: res.headers.get('Retry-After') };
  }

  /** Marks a button as working (disabled, its label swapped) or restores it. */
  function busy(button, isBusy, label) {
    if (!button) return;
    if (isBusy) {
      button.dataset.label = button.textContent;
      button.textContent = label;
      button.disabled = true;
      button.setAttribute('aria-busy', 'true');
    } else {
      button.textContent = button.dataset.label || button.textContent;
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }

  /**
   * A new element: attrs are attributes (`class`, `text` for its text; undefined, null and
   * false leave one out, true sets it empty), children are nodes or text (null, undefined
   * and false are skipped). Text is never parsed as HTML.
   */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
    return node;
  }

  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });

  /** A <time> in the reader's local time, with the UTC instant as its title; `short`: the time alone when it is today. */
  function timeEl(iso, short) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return document.createTextNode(iso || '');
    const sameDay = new Date().toDateString() === d.toDateString();
    return el('time', { datetime: iso, title: d.toISOString(), text: short && sameDay ? timeOnly.format(d) : dateTime.format(d) });
  }

  /** A card's live region: say(text, tone, action) replaces its message (tone 'error' or ok; action {href, label}). */
  function announcer(live) {
    let pending = 0;
    return function say(text, tone, action) {
      cancelAnimationFrame(pending);
      live.textContent = '';
      const p = el('p', { text });
      if (action) p.append(' ', el('a', { href: action.href, text: action.label }));
      const box = el('div', { class: `notice ${tone === 'error' ? 'notice-error' : 'notice-ok'}` }, p);
      pending = requestAnimationFrame(() => live.replaceChildren(box));
    };
  }

  window.notifyDashboard = Object.freeze({ api, busy, el, timeEl, announcer });
})();
