/**
 * Server-rendered HTML: the page frame, the dashboard (a column of panels that feature
 * plugins contribute) and the short message pages of sign-in (refused, failed, signed out).
 * No inline script or style anywhere: the content security policy forbids them.
 */
import { html, raw, type SafeHtml } from '../shared/html.js';
import type { Assets } from './static.js';
import type { Identity } from './session.js';

/** A card on the dashboard, contributed by a feature plugin (Telegram, My scripts, alert settings, desktop app). */
export interface DashboardPanel {
  /** Unique id, used for ordering ties and debugging. */
  id: string;
  /** Lower comes first. */
  order: number;
  /** The panel's HTML for this analyst (a `<section class="card">`, plus any dialogs). */
  render(identity: Identity): Promise<SafeHtml>;
}

const BRAND_ICON = raw(
  '<svg class="brand-icon" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 2a6 6 0 0 0-6 6v3.6L4.3 15A1 1 0 0 0 5.2 16.5h13.6a1 1 0 0 0 .9-1.5L18 11.6V8a6 6 0 0 0-6-6Zm0 20a3 3 0 0 0 2.8-2h-5.6A3 3 0 0 0 12 22Z"/></svg>',
);

interface FrameOptions {
  title: string;
  assets: Assets;
  body: SafeHtml;
  /** Signed-in pages: the account bar and the anti-forgery token. */
  identity?: Identity;
  /** Message pages are centered and narrow. */
  variant?: 'app' | 'message';
}

/** The whole HTML document around a body. */
export function frame(opts: FrameOptions): string {
  const id = opts.identity;
  const account = id
    ? html`<div class="account">
        <span class="account-name" title="${id.email}"><span class="visually-hidden">Signed in as </span><strong>${id.username}</strong><span class="account-email">${id.email}</span></span>
        <form method="post" action="/logout" class="logout-form">
          <input type="hidden" name="_csrf" value="${id.csrf}">
          <button type="submit" class="btn btn-quiet">Sign out</button>
        </form>
      </div>`
    : '';
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${id ? html`<meta name="csrf-token" content="${id.csrf}">\n` : ''}<meta name="referrer" content="no-referrer">
<title>${opts.title}</title>
<link rel="icon" href="${opts.assets.url('favicon.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${opts.assets.url('dashboard.css')}">
${id ? html`<script src="${opts.assets.url('api.js')}" defer></script>\n<script src="${opts.assets.url('dashboard.js')}" defer></script>\n` : ''}</head>
<body class="${opts.variant === 'message' ? 'page-message' : 'page-app'}">
<a class="skip-link" href="#main">Skip to content</a>
<header class="topbar">
  <div class="topbar-inner">
    <a class="brand" href="/">${BRAND_ICON}<span>Notifications</span></a>
    ${account}
  </div>
</header>
<main id="main" tabindex="-1">
${opts.body}
</main>
</body>
</html>
`.toString();
}

/** The dashboard: a greeting and the panels in order. */
export async function dashboardPage(identity: Identity, panels: readonly DashboardPanel[], assets: Assets): Promise<string> {
  const sorted = [...panels].sort((a, b) => a.order - b.order || a.id.localeCompare(b.id));
  const rendered = await Promise.all(sorted.map((p) => p.render(identity)));
  const body = html`<div class="container">
  <div class="page-head">
    <h1>Notification settings</h1>
    <p class="lead">Choose where alerts from your scripts in <code>~/user/notifications/</code> reach you.</p>
  </div>
  <noscript><p class="notice notice-warn">This page needs JavaScript to link or unlink Telegram.</p></noscript>
  ${rendered}
</div>`;
  return frame({ title: 'Notification settings', assets, body, identity, variant: 'app' });
}

/** A short page with a heading, a message (text, or markup built with `html`) and one way forward. */
export function messagePage(opts: {
  assets: Assets;
  title: string;
  heading: string;
  paragraphs: Array<string | SafeHtml>;
  action?: { href: string; label: string };
  tone?: 'info' | 'error';
}): string {
  const body = html`<div class="message-card${opts.tone === 'error' ? ' message-error' : ''}">
  <h1>${opts.heading}</h1>
  ${opts.paragraphs.map((p) => html`<p>${p}</p>\n  `)}
  ${opts.action ? html`<p class="message-action"><a class="btn btn-primary" href="${opts.action.href}">${opts.action.label}</a></p>` : ''}
</div>`;
  return frame({ title: opts.title, assets: opts.assets, body, variant: 'message' });
}
