// The dashboard's "My scripts" and "Alert settings" cards: list the analyst's scripts and
// recent runs, run one now, mute/snooze, quiet hours. Served as a static file: the content
// security policy allows no inline script. Everything is built with DOM calls (no innerHTML).
'use strict';

(function () {
  const { api, busy, el, timeEl, announcer } = window.notifyDashboard;
  const $ = (id) => document.getElementById(id);

  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });


  function untilText(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return new Date().toDateString() === d.toDateString() ? timeOnly.format(d) : dateTime.format(d);
  }

  const ICONS = { ok: '\u2714', idle: '\u2013', warn: '!', bad: '\u2716' };

  function outcomeBadge(label, tone) {
    return el('span', { class: `outcome outcome-${tone || 'idle'}` }, el('span', { class: 'outcome-icon', 'aria-hidden': 'true', text: ICONS[tone] || ICONS.idle }), el('span', { text: label }));
  }


  const scriptsCard = $('scripts-card');
  const rulesCard = $('rules-card');
  const sayScripts = scriptsCard ? announcer($('sc-live')) : () => undefined;
  const sayRules = rulesCard ? announcer($('ru-live')) : () => undefined;

  function answerError(say, res, fallback) {
    if (res.status === 401) say('Your session has ended.', 'error', { href: '/login', label: 'Sign in again' });
    else say(res.data.error || fallback, 'error');
  }

  // ---- My scripts ----------------------------------------------------------------------

  function scriptItem(s) {
    const state = [];
    if (s.muted) state.push(el('span', { class: 'tag tag-muted', text: 'Muted' }));
    else if (s.snoozed_until) state.push(el('span', { class: 'tag tag-muted' }, 'Snoozed until ', timeEl(s.snoozed_until, true)));
    if (s.cooldown_until && Date.parse(s.cooldown_until) > Date.now()) state.push(el('span', { class: 'tag' }, 'Cooldown until ', timeEl(s.cooldown_until, true)));

    const when = s.last_run ? el('span', { class: 'script-when' }, timeEl(s.last_run, false)) : null;
    const head = el(
      'div',
      { class: 'script-head' },
      el('code', { class: 'script-name', text: s.name }),
      outcomeBadge(s.last_outcome_label, s.tone),
      when,
      ...state,
    );
    const body = el('div', { class: 'script-main' }, head);
    if (s.schedule_error) body.append(el('pre', { class: 'script-error script-schedule-error', text: s.schedule_error }));
    else if (s.schedule) {
      const zone = s.schedule_zone && !s.schedule.endsWith(s.schedule_zone) ? ` (${s.schedule_zone})` : '';
      const next = s.schedule_due ? el('span', { text: 'due at the next runner pass' }) : s.next_run ? el('span', {}, 'next run ', timeEl(s.next_run, false)) : el('span', { text: 'no next run' });
      body.append(el('p', { class: 'hint script-schedule' }, 'Schedule ', el('code', { text: s.schedule }), zone, ' \u00b7 ', next));
    }
    if (s.last_error) body.append(el('pre', { class: 'script-error', text: s.last_error }));
    if (s.last_warning) body.append(el('p', { class: 'hint', text: `Warning: ${s.last_warning}` }));

    const actions = el('div', { class: 'script-actions', role: 'group', 'aria-label': `Actions for ${s.name}` });
    const run = el('button', { type: 'button', class: 'btn btn-primary btn-small', 'data-action': 'run', 'data-script': s.name, 'aria-label': `Run ${s.name} now`, text: 'Run now' });
    actions.append(run);
    if (s.muted || s.snoozed_until) {
      actions.append(el('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-action': 'unmute', 'data-script': s.name, 'aria-label': `Unmute ${s.name}`, text: 'Unmute' }));
    } else {
      actions.append(
        el('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-action': 'snooze', 'data-script': s.name, 'aria-label': `Snooze ${s.name} for 1 hour`, text: 'Snooze 1h' }),
        el('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-action': 'mute', 'data-script': s.name, 'aria-label': `Mute ${s.name}`, text: 'Mute' }),
      );
    }
    return el('li', { class: `script script-${s.tone || 'idle'}`, 'data-script': s.name }, body, actions);
  }

  const NOTICE_TEXT = {
    sent: ': resolved notice sent',
    sent_in_digest: ': resolved notice sent with the quiet-hours digest',
    held_for_digest: ': resolved notice held for the quiet-hours digest',
    not_sent: ' (notice held back by your rules)',
  };

  function resolvedLine(r) {
    const line = el('div', { class: 'hint run-resolved' }, `Condition cleared after ${r.resolved_after}${NOTICE_TEXT[r.resolved_notice] || ''}`);
    if (r.resolved_notice_until) line.append(', sent at ', timeEl(r.resolved_notice_until, true));
    return line;
  }

  function runRow(r) {
    const script = el('td', {}, el('code', { text: r.script }), r.trigger === 'on_demand' ? el('span', { class: 'hint trigger', text: ' on demand' }) : null);
    const outcome = el('td', {}, outcomeBadge(r.outcome_label, r.tone));
    if (r.title) outcome.append(el('div', { class: 'run-title', text: r.title }));
    if (r.error) outcome.append(el('pre', { class: 'script-error', text: r.error }));
    if (r.held_until) outcome.append(el('div', { class: 'hint' }, 'until ', timeEl(r.held_until, true)));
    if (r.resolved_at) outcome.append(el('div', { class: 'tag tag-resolved' }, `\u2705 Resolved after ${r.resolved_after}, `, timeEl(r.resolved_at, true)));
    if (r.resolved_alert) outcome.append(resolvedLine(r));
    let delivery;
    if (r.delivery) {
      const tone = r.delivery.status === 'delivered' ? 'ok' : 'bad';
      delivery = el('td', {}, outcomeBadge(r.delivery.label, tone));
      if (r.delivery.detail && tone !== 'ok') delivery.append(el('div', { class: 'hint', text: r.delivery.detail }));
    } else if (r.id) {
      delivery = el('td', { class: 'hint', text: r.outcome === 'sent' || r.outcome === 'pending_delivery' ? 'Pending' : '\u2013' });
    } else {
      delivery = el('td', { class: 'hint', text: '\u2013' });
    }
    return el('tr', {}, el('td', { class: 'nowrap' }, timeEl(r.time, true)), script, outcome, delivery);
  }

  async function loadScripts(announce) {
    if (!scriptsCard) return;
    scriptsCard.setAttribute('aria-busy', 'true');
    try {
      const res = await api('GET', '/api/scripts');
      $('sc-loading').hidden = true;
      if (res.status !== 200) {
        $('sc-error-text').textContent = res.status === 401 ? 'Your session has ended. Sign in again.' : res.data.error || 'Your scripts could not be read. Try again later.';
        $('sc-error').hidden = false;
        $('sc-list').replaceChildren();
        $('sc-empty').hidden = true;
        $('sc-runs-section').hidden = true;
        return;
      }
      $('sc-error').hidden = true;
      const { scripts, runs, rules } = res.data;
      $('sc-list').replaceChildren(...scripts.map(scriptItem));
      $('sc-empty').hidden = scripts.length > 0;
      $('sc-runs').replaceChildren(...runs.map(runRow));
      $('sc-runs-section').hidden = runs.length === 0;
      if (rules) renderRules(rules);
      if (announce) sayScripts(`Updated: ${scripts.length} script${scripts.length === 1 ? '' : 's'}.`, 'ok');
    } catch {
      $('sc-loading').hidden = true;
      sayScripts('The dashboard could not be reached. Check your connection and try again.', 'error');
    } finally {
      scriptsCard.setAttribute('aria-busy', 'false');
    }
  }

  if (scriptsCard) {
    $('sc-refresh').addEventListener('click', () => loadScripts(true));
    $('sc-list').addEventListener('click', async (event) => {
      const button = event.target instanceof Element ? event.target.closest('button[data-action]') : null;
      if (!button || button.disabled) return;
      const action = button.dataset.action;
      const name = button.dataset.script;
      let res;
      try {
        if (action === 'run') {
          busy(button, true, 'Running\u2026');
          sayScripts(`Running ${name}\u2026`, 'ok');
          res = await api('POST', '/api/scripts/run', { name });
        } else if (action === 'snooze') {
          busy(button, true, 'Snoozing\u2026');
          res = await api('POST', '/api/rules/snooze', { script: name, duration: '1h' });
        } else if (action === 'mute') {
          busy(button, true, 'Muting\u2026');
          res = await api('POST', '/api/rules/mute', { script: name });
        } else {
          busy(button, true, 'Unmuting\u2026');
          res = await api('POST', '/api/rules/unmute', { script: name });
        }
      } catch {
        busy(button, false);
        sayScripts('The dashboard could not be reached. Check your connection and try again.', 'error');
        return;
      }
      busy(button, false);
      if (res.status === 200) {
        sayScripts(res.data.message || 'Done.', 'ok');
        await loadScripts(false);
        // The list was rebuilt: keep the keyboard where it was.
        const again = scriptsCard.querySelector(`li[data-script="${CSS.escape(name)}"] button[data-action="${action === 'run' ? 'run' : action === 'unmute' ? 'snooze' : 'unmute'}"]`);
        if (again && document.activeElement === document.body) again.focus();
      } else {
        answerError(sayScripts, res, 'That did not work. Try again.');
        if (action === 'run') await loadScripts(false);
      }
    });
    void loadScripts(false);
  }

  // ---- Alert settings ------------------------------------------------------------------

  const browserZone = (() => {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    } catch {
      return 'UTC';
    }
  })();

  function stateLine(node, on, text) {
    const dot = el('span', { class: `dot ${on ? 'dot-on' : 'dot-off'}`, 'aria-hidden': 'true' });
    node.replaceChildren(dot, el('span', {}, ...text));
  }

  function renderRules(rules) {
    if (!rulesCard) return;
    const q = rules.quiet_hours;
    if (q) {
      stateLine($('ru-quiet-state'), true, [el('strong', { text: `Quiet hours ${q.start}\u2013${q.end}` }), ` (${q.tz}): alerts in this window come as one digest when it ends.`]);
    } else {
      stateLine($('ru-quiet-state'), false, ['No quiet hours: alerts arrive at any time.']);
    }
    $('ru-quiet-clear').hidden = !q;
    const scripts = Object.entries(rules.scripts || {});
    const muted = scripts.filter(([, s]) => s.muted).map(([n]) => n);
    const snoozed = scripts.filter(([, s]) => !s.muted && s.snoozed_until).map(([n]) => n);
    const parts = [];
    if (rules.muted_until) parts.push(el('strong', { text: `All alerts muted until ${untilText(rules.muted_until)}.` }));
    else parts.push(el('span', { text: 'Alerts are on.' }));
    if (muted.length) parts.push(` Muted: ${muted.join(', ')}.`);
    if (snoozed.length) parts.push(` Snoozed: ${snoozed.join(', ')}.`);
    stateLine($('ru-mute-state'), !rules.muted_until, parts);
    $('ru-unmute-all').hidden = !rules.muted_until && muted.length === 0 && snoozed.length === 0;
  }

  function quietError(text) {
    const box = $('ru-quiet-error');
    box.textContent = text;
    box.hidden = text === '';
    const tz = $('ru-tz');
    if (text === '') tz.removeAttribute('aria-invalid');
  }

  function validZone(tz) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }

  async function rulesChange(button, label, method, path, body) {
    busy(button, true, label);
    try {
      const res = await api(method, path, body);
      if (res.status === 200) {
        if (res.data.rules) renderRules(res.data.rules);
        sayRules(res.data.message || 'Saved.', 'ok');
        await loadScripts(false);
        return true;
      }
      answerError(sayRules, res, 'That did not work. Try again.');
      return res;
    } catch {
      sayRules('The dashboard could not be reached. Check your connection and try again.', 'error');
      return false;
    } finally {
      busy(button, false);
    }
  }

  if (rulesCard) {
    let seeded = { scripts: {} };
    try {
      seeded = JSON.parse(rulesCard.dataset.rules || '{}');
    } catch {
      // Keep the empty rules.
    }
    renderRules(seeded);
    const q = seeded.quiet_hours;
    $('ru-tz').value = q ? q.tz : browserZone;
    if (q) {
      $('ru-start').value = q.start;
      $('ru-end').value = q.end;
    }
    try {
      const list = $('ru-tz-list');
      const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
      list.replaceChildren(...['UTC', ...zones].map((z) => el('option', { value: z })));
    } catch {
      // No list: typing still works.
    }
    $('ru-tz').addEventListener('input', () => quietError(''));

    $('ru-quiet-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const start = $('ru-start').value;
      const end = $('ru-end').value;
      const tz = $('ru-tz').value.trim();
      if (!start || !end) {
        quietError('Enter both times, such as 22:00 and 07:00.');
        (start ? $('ru-end') : $('ru-start')).focus();
        return;
      }
      if (start === end) {
        quietError('The start and end of quiet hours must differ.');
        $('ru-end').focus();
        return;
      }
      if (!tz || !validZone(tz)) {
        quietError(tz ? `\u201c${tz}\u201d is not a time zone. Use a name such as ${browserZone}.` : `Enter a time zone, such as ${browserZone}.`);
        $('ru-tz').setAttribute('aria-invalid', 'true');
        $('ru-tz').focus();
        return;
      }
      quietError('');
      const res = await rulesChange($('ru-quiet-save'), 'Saving\u2026', 'PUT', '/api/rules/quiet-hours', { start, end, tz });
      if (res && res !== true && res.status === 400) quietError(res.data.error || 'Check the times and the time zone.');
    });
    $('ru-quiet-clear').addEventListener('click', async () => {
      const ok = await rulesChange($('ru-quiet-clear'), 'Clearing\u2026', 'DELETE', '/api/rules/quiet-hours', {});
      if (ok === true) $('ru-quiet-save').focus();
    });
    $('ru-mute-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      await rulesChange($('ru-mute-all'), 'Muting\u2026', 'POST', '/api/rules/mute', { duration: $('ru-mute-duration').value });
    });
    $('ru-unmute-all').addEventListener('click', async () => {
      const ok = await rulesChange($('ru-unmute-all'), 'Unmuting\u2026', 'POST', '/api/rules/unmute', {});
      if (ok === true) $('ru-mute-all').focus();
    });
  }

})();
