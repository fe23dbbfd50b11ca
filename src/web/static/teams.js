// The dashboard's "Team chats" card: the team chats the analyst owns or may send to (who
// may send and its members, last delivery, whether the bot is still in the group), linking a group with
// the code its /start gave, and for the owner who else may send, and unlinking. Served as
// a static file: the content security policy allows no inline script. DOM calls only.
'use strict';

(function () {
  const card = document.getElementById('teams-card');
  if (!card) return;
  const { api, busy, el, timeEl, announcer } = window.notifyDashboard;
  const $ = (id) => document.getElementById(id);
  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });


  const live = $('tm-live');
  const say = announcer(live);
  function answerError(res, fallback) {
    if (res.status === 401) say('Your session has ended.', 'error', { href: '/login', label: 'Sign in again' });
    else say(res.data.error || fallback, 'error');
  }

  function whoMaySend(t) {
    const parts = [t.owned ? 'you (owner)' : `${t.owner} (owner)`];
    if (t.members.length > 0) parts.push(t.members.join(', '));
    if (t.member_group) parts.push(`every member of the Linux group ${t.member_group}`);
    return parts.join('; ');
  }

  // Every analyst who may send: the owner, those named, and the accounts of the Linux group.
  function memberList(t) {
    const items = [el('li', { text: `${t.owner} (owner)` })];
    for (const m of t.members) if (m !== t.owner) items.push(el('li', { text: m }));
    if (t.member_group) {
      const named = new Set([t.owner, ...t.members]);
      if (t.member_group_members === null) items.push(el('li', { class: 'team-group-unknown', text: `members of ${t.member_group} (the group cannot be read now)` }));
      else {
        const via = t.member_group_members.filter((m) => !named.has(m));
        for (const m of via) items.push(el('li', { text: `${m} (via ${t.member_group})` }));
        if (via.length === 0) items.push(el('li', { class: 'team-group-unknown', text: `nobody else in ${t.member_group}` }));
      }
    }
    return el('ul', { class: 'team-members', 'aria-label': `Members of ${t.name}` }, ...items);
  }

  function silencedText(s) {
    const what = `${s.script}${s.sender ? ` of ${s.sender}` : ''}`;
    return s.muted ? `${what}: muted here (by ${s.by})` : `${what}: snoozed here until ${dateTime.format(new Date(s.until))} (by ${s.by})`;
  }

  function accessForm(t) {
    const id = `tm-${t.name}`;
    const members = el('input', { id: `${id}-members`, type: 'text', value: t.members.join(', '), autocomplete: 'off', spellcheck: 'false', placeholder: 'alice, bob' });
    const group = el('input', { id: `${id}-group`, type: 'text', value: t.member_group || '', autocomplete: 'off', spellcheck: 'false', placeholder: 'finance' });
    const save = el('button', { type: 'submit', class: 'btn btn-secondary', text: 'Save who may send' });
    const unlink = el('button', { type: 'button', class: 'btn btn-danger-outline', text: 'Unlink', 'aria-haspopup': 'dialog', 'aria-label': `Unlink ${t.name}` });
    const form = el(
      'form',
      { class: 'team-access', novalidate: true, 'aria-label': `Who may send to ${t.name}` },
      el('div', { class: 'team-field' }, el('label', { for: members.id, text: 'Analysts by name' }), members),
      el('div', { class: 'team-field' }, el('label', { for: group.id, text: 'Linux group' }), group),
      save,
      unlink,
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      busy(save, true, 'Saving…');
      try {
        const res = await api('POST', '/api/teams/access', { name: t.name, members: members.value, member_group: group.value.trim() || null });
        if (res.status === 200) {
          say(res.data.message, 'ok');
          await load();
        } else answerError(res, 'Could not save who may send.');
      } catch {
        say('The server could not be reached. Check your connection and try again.', 'error');
      } finally {
        busy(save, false);
      }
    });
    unlink.addEventListener('click', () => confirmUnlink(t.name, unlink));
    return form;
  }

  function teamItem(t) {
    const facts = el(
      'dl',
      { class: 'team-facts' },
      el('dt', { text: 'Who may send' }),
      el('dd', { class: 'team-senders', text: whoMaySend(t) }),
      el('dt', { text: 'Members' }),
      el('dd', {}, memberList(t)),
      el('dt', { text: 'Last delivery' }),
      el('dd', { class: 'team-last' }, t.last_delivery_at ? timeEl(t.last_delivery_at) : 'nothing delivered yet'),
      el('dt', { text: 'Linked' }),
      el('dd', {}, timeEl(t.linked_at)),
    );
    if (t.silenced.length > 0) facts.append(el('dt', { text: 'Silenced here' }), el('dd', { class: 'team-silenced', text: t.silenced.map(silencedText).join('; ') }));
    const refused = t.delivery_refused
      ? el(
          'div',
          { class: 'notice notice-warn team-refused-notice' },
          el('p', {}, el('strong', { text: 'Not taking messages. ' }), `Since `, timeEl(t.delivery_refused.at), ` Telegram refuses them: ${t.delivery_refused.reason}. Sends to ${t.name} are refused until the bot is added back to the group.`),
        )
      : null;
    return el(
      'li',
      { class: `team-item${t.delivery_refused ? ' team-refused' : ''}`, 'data-team': t.name },
      el(
        'div',
        { class: 'team-head' },
        el('span', { class: 'team-name', text: t.name }),
        t.title ? el('span', { class: 'team-title', text: t.title }) : null,
        el('span', { class: `team-role${t.owned ? ' team-role-owner' : ''}`, text: t.owned ? 'Owner' : `Allowed by ${t.owner}` }),
      ),
      facts,
      refused,
      t.owned ? accessForm(t) : null,
    );
  }

  async function load() {
    try {
      const res = await api('GET', '/api/teams');
      $('tm-loading').hidden = true;
      if (res.status !== 200) {
        $('tm-error-text').textContent = res.status === 401 ? 'Your session has ended. Sign in again.' : res.data.error || 'The team chats could not be read.';
        $('tm-error').hidden = false;
        return;
      }
      $('tm-error').hidden = true;
      const teams = res.data.teams || [];
      $('tm-empty').hidden = teams.length > 0;
      $('tm-list').replaceChildren(...teams.map(teamItem));
    } catch {
      $('tm-loading').hidden = true;
      $('tm-error-text').textContent = 'The server could not be reached. Reload the page to try again.';
      $('tm-error').hidden = false;
    } finally {
      card.removeAttribute('aria-busy');
    }
  }

  // Unlink behind a confirmation dialog.
  const dialog = $('tm-unlink-dialog');
  let unlinking = null;
  function confirmUnlink(name, opener) {
    unlinking = { name, opener };
    $('tm-unlink-title').textContent = `Unlink ${name}?`;
    dialog.showModal();
  }
  $('tm-unlink-cancel').addEventListener('click', () => dialog.close('cancel'));
  dialog.addEventListener('close', () => {
    if (dialog.returnValue !== 'unlinked' && unlinking && unlinking.opener.isConnected) unlinking.opener.focus();
    dialog.returnValue = '';
  });
  $('tm-unlink-confirm').addEventListener('click', async () => {
    if (!unlinking) return;
    const button = $('tm-unlink-confirm');
    busy(button, true, 'Unlinking…');
    try {
      const res = await api('POST', '/api/teams/unlink', { name: unlinking.name });
      dialog.close(res.status === 200 ? 'unlinked' : 'cancel');
      if (res.status === 200) {
        say(res.data.message, 'ok');
        await load();
      } else answerError(res, 'Could not unlink the team chat.');
    } catch {
      dialog.close('cancel');
      say('The server could not be reached. Check your connection and try again.', 'error');
    } finally {
      busy(button, false);
    }
  });

  // Link a group with its code.
  const form = $('tm-link-form');
  if (form) {
    const code = $('tm-code');
    const name = $('tm-name');
    const error = $('tm-link-error');
    const submit = $('tm-link');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.hidden = true;
      code.removeAttribute('aria-invalid');
      name.removeAttribute('aria-invalid');
      busy(submit, true, 'Linking…');
      try {
        const res = await api('POST', '/api/teams/link', { code: code.value, name: name.value });
        if (res.status === 200) {
          form.reset();
          say(res.data.message, 'ok');
          await load();
        } else if (res.status === 401) {
          answerError(res, '');
        } else {
          error.textContent = res.data.error || 'The group could not be linked.';
          error.hidden = false;
          (/code/i.test(error.textContent) ? code : name).setAttribute('aria-invalid', 'true');
        }
      } catch {
        error.textContent = 'The server could not be reached. Check your connection and try again.';
        error.hidden = false;
      } finally {
        busy(submit, false);
      }
    });
  }

  void load();
})();
