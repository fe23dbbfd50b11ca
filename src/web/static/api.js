// The dashboard API from the browser, shared by every card's script (loaded first, deferred,
// so it runs before them): JSON in and out, the session's anti-forgery token on every
// state-changing request. Served as a static file: the content security policy allows no
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

  window.notifyDashboard = Object.freeze({ api, busy });
})();
