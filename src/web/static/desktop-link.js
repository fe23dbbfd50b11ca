// The desktop app's sign-in page: "Authorize Desktop App" asks the dashboard for a sign-in
// link and opens it; the operating system hands the link (the app's own URL scheme) to the
// desktop app. A static file: the content security policy allows no inline script.
'use strict';

(function () {
  const card = document.getElementById('desktop-link');
  if (!card) return;
  const { api, busy } = window.notifyDashboard;
  const button = document.getElementById('dl-authorize');
  const live = document.getElementById('dl-live');

  function say(text, tone) {
    const box = document.createElement('div');
    box.className = `notice ${tone === 'error' ? 'notice-error' : 'notice-ok'}`;
    const p = document.createElement('p');
    p.textContent = text;
    box.append(p);
    live.replaceChildren(box);
  }

  button.addEventListener('click', async () => {
    busy(button, true, 'Authorizing…');
    try {
      const res = await api('POST', '/api/desktop/authorize');
      if (res.status === 200 && typeof res.data.url === 'string') {
        say('Opening the desktop app… If nothing happens, check that the desktop app is installed, then press the button again.', 'ok');
        window.location.href = res.data.url;
      } else if (res.status === 401) {
        say('Your session has ended. Reload the page to sign in again.', 'error');
      } else {
        say(res.data.error || 'The desktop app could not be authorized. Try again.', 'error');
      }
    } catch {
      say('The dashboard could not be reached. Check your connection and try again.', 'error');
    } finally {
      busy(button, false);
    }
  });
})();
