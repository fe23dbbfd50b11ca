// The "Desktop app" card: whether the desktop app is linked (with Unlink), create a desktop
// token (shown once, with a copy button), list and revoke tokens without page reloads. A static file: the content security policy allows no
// inline script.
'use strict';

(function () {
  const card = document.getElementById('desktop-card');
  if (!card) return;
  const { api } = window.notifyDashboard;
  const $ = (id) => document.getElementById(id);


  const live = $('dt-live');
  const form = $('dt-create-form');
  const labelInput = $('dt-label');
  const daysSelect = $('dt-days');
  const labelError = $('dt-label-error');
  const createButton = $('dt-create');
  const newBox = $('dt-new');
  const tokenBox = $('dt-token');
  const copyButton = $('dt-copy');
  const doneButton = $('dt-done');
  const table = $('dt-table');
  const rows = $('dt-rows');
  const empty = $('dt-empty');
  const dialog = $('dt-revoke-dialog');
  const dialogName = $('dt-revoke-name');
  const confirmButton = $('dt-revoke-confirm');
  const cancelButton = $('dt-revoke-cancel');
  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  function say(text, tone) {
    live.textContent = '';
    const box = document.createElement('div');
    box.className = `notice ${tone === 'error' ? 'notice-error' : 'notice-ok'}`;
    const p = document.createElement('p');
    p.textContent = text;
    box.append(p);
    requestAnimationFrame(() => live.replaceChildren(box));
  }

  function failed(res, fallback) {
    if (res.status === 401) say('Your session has ended. Sign in again.', 'error');
    else say(res.data.error || fallback, 'error');
  }

  function timeCell(iso) {
    const td = document.createElement('td');
    const t = document.createElement('time');
    t.setAttribute('datetime', iso);
    const d = new Date(iso);
    t.textContent = Number.isNaN(d.getTime()) ? iso : dateFormat.format(d);
    td.append(t);
    return td;
  }

  function localTimes() {
    card.querySelectorAll('time[datetime]').forEach((t) => {
      const d = new Date(t.getAttribute('datetime') || '');
      if (!Number.isNaN(d.getTime())) t.textContent = dateFormat.format(d);
    });
  }

  function render(tokens) {
    rows.replaceChildren();
    for (const t of tokens) {
      const tr = document.createElement('tr');
      tr.dataset.jti = t.jti;
      const name = document.createElement('td');
      if (t.label) name.textContent = t.label;
      else {
        const span = document.createElement('span');
        span.className = 'hint';
        span.textContent = '(no label)';
        name.append(span);
      }
      const status = document.createElement('td');
      const badge = document.createElement('span');
      badge.className = `badge ${t.revoked ? 'badge-off' : 'badge-on'}`;
      badge.textContent = t.revoked ? 'Revoked' : 'Active';
      status.append(badge);
      const action = document.createElement('td');
      if (!t.revoked) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'btn btn-danger-outline btn-revoke';
        b.dataset.jti = t.jti;
        b.dataset.label = t.label || '';
        b.setAttribute('aria-haspopup', 'dialog');
        b.textContent = 'Revoke';
        const hidden = document.createElement('span');
        hidden.className = 'visually-hidden';
        hidden.textContent = ` ${t.label || 'token'}`;
        b.append(hidden);
        action.append(b);
      }
      tr.append(name, timeCell(t.created_at), timeCell(t.expires_at), status, action);
      rows.append(tr);
    }
    table.hidden = tokens.length === 0;
    empty.hidden = tokens.length !== 0;
  }

  async function refresh() {
    const res = await api('GET', '/api/desktop/tokens');
    if (res.status === 200) render(res.data.tokens || []);
    else failed(res, 'Your tokens could not be loaded.');
  }

  localTimes();

  if (form) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      labelError.hidden = true;
      labelInput.removeAttribute('aria-invalid');
      createButton.disabled = true;
      try {
        const res = await api('POST', '/api/desktop/tokens', { label: labelInput.value.trim(), days: Number(daysSelect.value) });
        if (res.status === 200) {
          tokenBox.value = res.data.token;
          newBox.hidden = false;
          newBox.focus();
          tokenBox.select();
          labelInput.value = '';
          say('Token created. Copy it now: it will not be shown again.', 'ok');
          await refresh();
        } else if (res.status === 400) {
          labelError.textContent = res.data.error || 'Check the form.';
          labelError.hidden = false;
          labelInput.setAttribute('aria-invalid', 'true');
          labelInput.focus();
        } else failed(res, 'The token could not be created. Try again.');
      } catch {
        say('The dashboard could not be reached. Check your connection and try again.', 'error');
      } finally {
        createButton.disabled = false;
      }
    });
    copyButton.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(tokenBox.value);
        say('Token copied to the clipboard.', 'ok');
      } catch {
        tokenBox.select();
        say('Copying is not allowed here: the token is selected, press Ctrl+C (or Cmd+C).', 'error');
      }
    });
    doneButton.addEventListener('click', () => {
      tokenBox.value = '';
      newBox.hidden = true;
      labelInput.focus();
    });
  }

  // Revoke, behind a confirmation dialog.
  let target = null;
  rows.addEventListener('click', (event) => {
    const b = event.target instanceof Element ? event.target.closest('.btn-revoke') : null;
    if (!b) return;
    target = b;
    dialogName.textContent = b.dataset.label || 'this token';
    dialog.showModal();
    cancelButton.focus();
  });
  cancelButton.addEventListener('click', () => dialog.close('cancel'));
  dialog.addEventListener('close', () => {
    if (dialog.returnValue !== 'revoked' && target && target.isConnected) target.focus();
    dialog.returnValue = '';
  });
  confirmButton.addEventListener('click', async () => {
    if (!target) return;
    const jti = target.dataset.jti;
    confirmButton.disabled = true;
    try {
      const res = await api('POST', '/api/desktop/tokens/revoke', { jti });
      dialog.close(res.status === 200 ? 'revoked' : 'cancel');
      if (res.status === 200) {
        await refresh();
        say(res.data.message || 'The token is revoked.', 'ok');
        $('dt-list-title').setAttribute('tabindex', '-1');
        $('dt-list-title').focus();
      } else failed(res, 'The token could not be revoked. Try again.');
    } catch {
      dialog.close('cancel');
      say('The dashboard could not be reached. Check your connection and try again.', 'error');
    } finally {
      confirmButton.disabled = false;
    }
  });

  // Unlink the desktop app (revokes every desktop token), behind a confirmation dialog.
  const unlinkButton = $('dt-unlink');
  const unlinkDialog = $('dt-unlink-dialog');
  const unlinkConfirm = $('dt-unlink-confirm');
  unlinkButton.addEventListener('click', () => {
    unlinkDialog.showModal();
    $('dt-unlink-cancel').focus();
  });
  $('dt-unlink-cancel').addEventListener('click', () => unlinkDialog.close('cancel'));
  unlinkDialog.addEventListener('close', () => {
    if (unlinkDialog.returnValue !== 'unlinked' && !unlinkButton.hidden) unlinkButton.focus();
    unlinkDialog.returnValue = '';
  });
  unlinkConfirm.addEventListener('click', async () => {
    unlinkConfirm.disabled = true;
    try {
      const res = await api('POST', '/api/desktop/unlink');
      unlinkDialog.close(res.status === 200 || res.status === 400 ? 'unlinked' : 'cancel');
      if (res.status === 200 || res.status === 400) {
        // 400: it was not linked (any more); either way the card now says so.
        const badge = $('dt-link-badge');
        badge.className = 'badge badge-off';
        badge.textContent = 'Not linked';
        const since = $('dt-link-since');
        if (since) since.remove();
        unlinkButton.hidden = true;
        $('dt-link-hint').hidden = false;
        await refresh();
        say(res.status === 200 ? res.data.message || 'Desktop app unlinked.' : res.data.error, res.status === 200 ? 'ok' : 'error');
        $('dt-title').setAttribute('tabindex', '-1');
        $('dt-title').focus();
      } else failed(res, 'The desktop app could not be unlinked. Try again.');
    } catch {
      unlinkDialog.close('cancel');
      say('The dashboard could not be reached. Check your connection and try again.', 'error');
    } finally {
      unlinkConfirm.disabled = false;
    }
  });
})();
