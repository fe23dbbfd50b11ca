// Delivery status in the Telegram and desktop cards: the last delivery to Telegram (and why
// it failed, or since when it is retried), whether the bot reaches Telegram, how many
// desktop apps are connected now; and "Send test notification", which reports what each
// channel did. A static file: the content security policy allows no inline script.
'use strict';

(function () {
  const tgCard = document.getElementById('telegram-card');
  const dtCard = document.getElementById('desktop-card');
  if (!tgCard && !dtCard) return;
  const { api, busy, el, timeEl } = window.notifyDashboard;


  // ---- Places in the cards ----
  let tgDelivery = null;
  let tgPolling = null;
  let testReport = null;
  let testButton = null;
  if (tgCard) {
    tgPolling = el('div', { class: 'notice notice-warn', id: 'tg-polling', hidden: '' });
    const firstBody = tgCard.querySelector('.card-body');
    if (firstBody) firstBody.before(tgPolling);
    tgDelivery = el('p', { id: 'tg-delivery', class: 'state-line' });
    const linked = document.getElementById('tg-linked');
    const actions = linked && linked.querySelector('.actions');
    if (actions) actions.before(tgDelivery);

    testButton = el('button', { type: 'button', class: 'btn btn-secondary', id: 'ch-test-button', text: 'Send test notification' });
    testReport = el('ul', { id: 'ch-test-report', class: 'plain-list', 'aria-live': 'polite', hidden: '' });
    tgCard.append(
      el(
        'div',
        { class: 'card-body', id: 'ch-test' },
        el('h3', { id: 'ch-test-title', text: 'Check delivery' }),
        el('p', { class: 'hint', text: 'Sends a test notification the way your scripts do, to Telegram and to your desktop apps, and shows what each did.' }),
        el('div', { class: 'actions' }, testButton),
        testReport,
      ),
    );
  }
  let dtConnected = null;
  if (dtCard) {
    dtConnected = el('span', { id: 'dt-connected', class: 'badge badge-off', text: '…' });
    const state = document.getElementById('dt-link-state');
    const p = el('p', {}, el('span', { class: 'label', text: 'Connected now:' }), ' ', dtConnected);
    if (state) state.prepend(p);
  }

  // ---- Status ----
  function showTelegram(tg) {
    if (!tgDelivery || !tg) return;
    tgPolling.replaceChildren();
    if (tg.polling === false && tg.polling_error) {
      tgPolling.append(
        el('p', {}, el('strong', { text: 'The bot cannot reach Telegram just now' }), ` (${tg.polling_error})`, tg.polling_failing_since ? ', since ' : '', tg.polling_failing_since ? timeEl(tg.polling_failing_since) : '', '. Alerts wait in the queue and go out when it can.'),
      );
      tgPolling.hidden = false;
    } else tgPolling.hidden = true;
    tgDelivery.replaceChildren();
    if (!tg.linked) return;
    const label = el('span', { class: 'label', text: 'Last delivery:' });
    if (tg.retrying) {
      tgDelivery.append(label, ' ', el('span', { class: 'badge badge-warn', text: 'Retrying' }), ' since ', timeEl(tg.retrying.since), ` (${tg.retrying.attempts} attempts so far): ${tg.retrying.reason}`);
    } else if (tg.last) {
      const ok = tg.last.status === 'delivered';
      tgDelivery.append(label, ' ', el('span', { class: `badge ${ok ? 'badge-on' : 'badge-off'}`, text: ok ? 'Delivered' : tg.last.status === 'refused' ? 'Refused by Telegram' : 'Failed' }), ' ', timeEl(tg.last.at), ok || !tg.last.detail ? '' : `: ${tg.last.detail}`);
    } else tgDelivery.append(label, ' ', el('span', { class: 'hint', text: 'none yet' }));
  }

  function showDesktop(dt) {
    if (!dtConnected || !dt) return;
    if (dt.connections === null) {
      dtConnected.className = 'badge badge-off';
      dtConnected.textContent = 'Unknown';
      dtConnected.title = dt.error || '';
    } else {
      dtConnected.className = `badge ${dt.connections > 0 ? 'badge-on' : 'badge-off'}`;
      dtConnected.textContent = dt.connections > 0 ? `Yes (${dt.connections} app${dt.connections === 1 ? '' : 's'})` : 'No';
      dtConnected.removeAttribute('title');
    }
  }

  async function refresh() {
    try {
      const res = await api('GET', '/api/channels');
      if (res.status !== 200) return;
      showTelegram(res.data.telegram);
      showDesktop(res.data.desktop);
    } catch {
      // Offline: the cards keep what they show.
    }
  }

  // ---- Test ----
  function telegramLine(t) {
    switch (t.status) {
      case 'delivered':
        return 'Telegram: delivered to your chat.';
      case 'refused':
        return `Telegram: refused${t.detail ? ` (${t.detail})` : ''}. Unlink and link Telegram again, and make sure you have not blocked the bot.`;
      case 'failed':
        return `Telegram: failed${t.detail ? ` (${t.detail})` : ''}.`;
      case 'queued':
        return `Telegram: not delivered yet, it is queued and retried${t.detail ? ` (${t.detail})` : ''}.`;
      case 'not_linked':
        return 'Telegram: not linked.';
      case 'suppressed':
        return 'Telegram: held back by your alert settings.';
      default:
        return `Telegram: ${t.status}.`;
    }
  }

  function desktopLine(d, connections) {
    if (typeof d.status === 'number') return d.status > 0 ? `Desktop: shown on ${d.status} connected app${d.status === 1 ? '' : 's'}.` : 'Desktop: no desktop app of yours is connected.';
    if (d.status === 'pending') return typeof connections === 'number' && connections > 0 ? `Desktop: handed to the gateway; ${connections} app${connections === 1 ? '' : 's'} connected.` : 'Desktop: no desktop app of yours is connected.';
    if (d.status === 'unavailable') return 'Desktop: the desktop gateway is not answering.';
    return `Desktop: ${d.status}.`;
  }

  if (testButton) {
    testButton.addEventListener('click', async () => {
      busy(testButton, true, 'Sending…');
      testReport.hidden = true;
      try {
        const res = await api('POST', '/api/channels/test');
        const lines = [];
        if (res.status === 200) {
          const channels = res.data.channels || {};
          lines.push(telegramLine(res.data.telegram));
          lines.push(desktopLine(res.data.desktop, channels.desktop && channels.desktop.connections));
          if (res.data.ok === false && res.data.message) lines.push(res.data.message);
          showTelegram(channels.telegram);
          showDesktop(channels.desktop);
        } else if (res.status === 401) lines.push('Your session has ended. Sign in again.');
        else lines.push(res.data.error || 'The test notification could not be sent. Try again.');
        testReport.replaceChildren(...lines.map((text) => el('li', { text })));
        testReport.hidden = false;
      } catch {
        testReport.replaceChildren(el('li', { text: 'The dashboard could not be reached. Check your connection and try again.' }));
        testReport.hidden = false;
      } finally {
        busy(testButton, false);
      }
    });
  }

  void refresh();
  // Kept current while the page is open (and at once when it comes back into view).
  setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, 30000);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') void refresh();
  });
})();
