// The dashboard's behaviour: the Telegram card (verify a code, one-tap link, unlink) without
// page reloads. Served as a static file: the content security policy allows no inline script.
'use strict';

(function () {
  const { api, busy } = window.notifyDashboard;


  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'long', timeStyle: 'short' });
  const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });

  /** Shows an ISO timestamp of a <time> element in the reader's local time. */
  function showLocalTime(el, iso) {
    if (!el) return;
    if (iso !== undefined) el.setAttribute('datetime', iso);
    const d = new Date(el.getAttribute('datetime') || '');
    if (!Number.isNaN(d.getTime())) {
      el.textContent = dateFormat.format(d);
      el.title = d.toISOString();
    }
  }

  const card = document.getElementById('telegram-card');
  if (!card) return;

  const $ = (id) => document.getElementById(id);
  const live = $('tg-live');
  const badge = $('tg-badge');
  const linkedSection = $('tg-linked');
  const unlinkedSection = $('tg-unlinked');
  const linkedHeading = $('tg-linked-heading');
  const unlinkedHeading = $('tg-unlinked-heading');
  const form = $('tg-verify-form');
  const codeInput = $('tg-code');
  const codeError = $('tg-code-error');
  const verifyButton = $('tg-verify');
  const unlinkButton = $('tg-unlink');
  const dialog = $('tg-unlink-dialog');
  const confirmButton = $('tg-unlink-confirm');
  const cancelButton = $('tg-unlink-cancel');
  const deeplinkButton = $('tg-deeplink');
  const deeplinkPanel = $('tg-deeplink-panel');
  const openLink = $('tg-open');
  const qr = $('tg-qr');
  const expiry = $('tg-deeplink-expiry');

  card.querySelectorAll('time[datetime]').forEach((el) => showLocalTime(el));

  let pendingSay = 0;

  /** Puts a message in the live region (announced by screen readers). */
  function say(text, tone, action) {
    cancelAnimationFrame(pendingSay);
    live.textContent = '';
    const box = document.createElement('div');
    box.className = `notice ${tone === 'error' ? 'notice-error' : 'notice-ok'}`;
    const p = document.createElement('p');
    p.textContent = text;
    if (action) {
      p.append(' ');
      const a = document.createElement('a');
      a.href = action.href;
      a.textContent = action.label;
      p.append(a);
    }
    box.append(p);
    // A fresh node on the next frame, so the same message twice is announced twice.
    pendingSay = requestAnimationFrame(() => live.replaceChildren(box));
  }

  function clearMessage() {
    cancelAnimationFrame(pendingSay);
    live.textContent = '';
  }

  function sessionEnded() {
    say('Your session has ended.', 'error', { href: '/login', label: 'Sign in again' });
  }

  function networkError() {
    say('The dashboard could not be reached. Check your connection and try again.', 'error');
  }

  function minutesText(seconds) {
    const m = Math.ceil(Number(seconds) / 60);
    return m <= 1 ? 'a minute' : `${m} minutes`;
  }

  /** Switches the card between its two states. */
  function render(status) {
    const linked = Boolean(status && status.linked);
    card.dataset.linked = String(linked);
    badge.textContent = linked ? 'Linked' : 'Not linked';
    badge.className = `badge ${linked ? 'badge-on' : 'badge-off'}`;
    linkedSection.hidden = !linked;
    unlinkedSection.hidden = linked;
    if (linked) {
      showLocalTime($('tg-linked-at'), status.linked_at || new Date().toISOString());
      const refused = $('tg-refused');
      if (refused) {
        refused.hidden = !status.delivery_refused;
        if (status.delivery_refused) {
          showLocalTime($('tg-refused-at'), status.delivery_refused.at);
          $('tg-refused-reason').textContent = status.delivery_refused.reason || '';
        }
      }
      stopPolling();
    } else {
      if (codeInput) {
        codeInput.value = '';
        setFieldError('');
      }
      resetDeeplink();
    }
  }

  async function refresh() {
    const res = await api('GET', '/api/telegram/status');
    if (res.status === 401) {
      sessionEnded();
      return null;
    }
    if (res.status === 200) render(res.data);
    return res.status === 200 ? res.data : null;
  }

  function setFieldError(text) {
    if (!codeInput) return;
    codeError.textContent = text;
    codeError.hidden = text === '';
    if (text === '') codeInput.removeAttribute('aria-invalid');
    else codeInput.setAttribute('aria-invalid', 'true');
  }


  function linkedNow(message) {
    say(message, 'ok');
    linkedHeading.focus();
  }

  // Verify a code.
  if (form) {
    codeInput.addEventListener('input', () => {
      if (codeInput.getAttribute('aria-invalid')) setFieldError('');
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const code = codeInput.value.replace(/\s+/g, '');
      if (code === '') {
        setFieldError('Enter the 6-digit code the bot sent you.');
        codeInput.focus();
        return;
      }
      if (!/^\d{6}$/.test(code)) {
        setFieldError('A code is 6 digits. Check the bot\u2019s reply and try again.');
        codeInput.focus();
        return;
      }
      setFieldError('');
      clearMessage();
      busy(verifyButton, true, 'Verifying\u2026');
      try {
        const res = await api('POST', '/api/telegram/verify', { code });
        if (res.status === 200) {
          await refresh();
          linkedNow(res.data.message || 'Telegram is linked.');
        } else if (res.status === 401) {
          sessionEnded();
        } else if (res.status === 429) {
          const wait = res.retryAfter ? ` (about ${minutesText(res.retryAfter)})` : '';
          setFieldError((res.data.error || 'Too many attempts. Wait a while, then try again.') + (res.data.error ? '' : wait));
          codeInput.focus();
        } else if (res.status === 400 || res.status === 403) {
          setFieldError(res.data.error || 'That code was not accepted.');
          codeInput.focus();
          codeInput.select();
        } else {
          say(res.data.error || 'Something went wrong on the server. Try again.', 'error');
        }
      } catch {
        networkError();
      } finally {
        busy(verifyButton, false);
      }
    });
  }

  // Unlink, behind a confirmation dialog.
  if (unlinkButton && dialog) {
    unlinkButton.addEventListener('click', () => {
      clearMessage();
      dialog.showModal();
      cancelButton.focus();
    });
    cancelButton.addEventListener('click', () => dialog.close('cancel'));
    dialog.addEventListener('close', () => {
      if (dialog.returnValue !== 'unlinked' && !linkedSection.hidden) unlinkButton.focus();
      dialog.returnValue = '';
    });
    confirmButton.addEventListener('click', async () => {
      busy(confirmButton, true, 'Unlinking\u2026');
      try {
        const res = await api('POST', '/api/telegram/unlink');
        if (res.status === 200 || res.status === 400) {
          dialog.close('unlinked');
          await refresh();
          say(res.status === 200 ? res.data.message || 'Telegram is unlinked.' : res.data.error || 'Telegram is not linked.', res.status === 200 ? 'ok' : 'error');
          unlinkedHeading.focus();
        } else if (res.status === 401) {
          dialog.close('cancel');
          sessionEnded();
        } else {
          dialog.close('cancel');
          say(res.data.error || 'Something went wrong on the server. Try again.', 'error');
        }
      } catch {
        dialog.close('cancel');
        networkError();
      } finally {
        busy(confirmButton, false);
      }
    });
  }

  // One-tap linking: a personal t.me link and its QR code; the card polls until the bot links.
  let pollTimer = null;
  let pollUntil = 0;

  function stopPolling() {
    if (pollTimer !== null) clearTimeout(pollTimer);
    pollTimer = null;
  }

  function schedulePoll() {
    stopPolling();
    if (Date.now() >= pollUntil) {
      expired();
      return;
    }
    pollTimer = setTimeout(async () => {
      pollTimer = null;
      try {
        const res = await api('GET', '/api/telegram/status');
        if (res.status === 401) {
          resetDeeplink();
          sessionEnded();
          return;
        }
        if (res.status === 200 && res.data.linked) {
          render(res.data);
          linkedNow('Telegram is linked. A welcome message is waiting in your chat.');
          return;
        }
      } catch {
        // A missed poll is retried on the next tick.
      }
      if (pollUntil !== 0) schedulePoll();
    }, document.hidden ? 10000 : 2500);
  }

  function expired() {
    stopPolling();
    if (!deeplinkPanel || deeplinkPanel.hidden) return;
    deeplinkPanel.hidden = true;
    openLink.setAttribute('href', '#');
    qr.textContent = '';
    deeplinkButton.textContent = 'Get a new one-tap link';
    deeplinkButton.hidden = false;
    say('Your one-tap link has expired. Get a new one, or use a code.', 'error');
  }

  function resetDeeplink() {
    stopPolling();
    pollUntil = 0;
    if (!deeplinkPanel) return;
    deeplinkPanel.hidden = true;
    openLink.setAttribute('href', '#');
    qr.textContent = '';
    deeplinkButton.textContent = 'Get a one-tap link';
    deeplinkButton.hidden = false;
  }

  document.addEventListener('visibilitychange', () => {
    // Coming back from Telegram: check at once.
    if (!document.hidden && pollTimer !== null) {
      stopPolling();
      pollTimer = setTimeout(() => schedulePoll(), 0);
    }
  });

  if (deeplinkButton) {
    deeplinkButton.addEventListener('click', async () => {
      clearMessage();
      busy(deeplinkButton, true, 'Getting your link\u2026');
      try {
        const res = await api('POST', '/api/telegram/link-token');
        if (res.status === 200) {
          openLink.setAttribute('href', res.data.url);
          const svg = new DOMParser().parseFromString(res.data.qr_svg, 'image/svg+xml').documentElement;
          svg.setAttribute('aria-hidden', 'true');
          svg.setAttribute('focusable', 'false');
          qr.replaceChildren(document.importNode(svg, true));
          const until = new Date(res.data.expires_at);
          expiry.textContent = `This link works once, until ${timeFormat.format(until)}. This card updates by itself when you are linked.`;
          deeplinkPanel.hidden = false;
          deeplinkButton.hidden = true;
          pollUntil = until.getTime();
          schedulePoll();
          openLink.focus();
        } else if (res.status === 401) {
          sessionEnded();
        } else {
          say(res.data.error || 'Could not get a link. Try again, or use a code.', 'error');
        }
      } catch {
        networkError();
      } finally {
        busy(deeplinkButton, false);
      }
    });
  }
})();
