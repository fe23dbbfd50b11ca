/**
 * The "Team chats" card of the dashboard and its API: link a Telegram group under a name
 * with the code its /start gave (guesses count against the same limiter as the personal
 * code), list the team chats the analyst owns or may send to with who may send (the
 * analysts named and the accounts of the Linux group) and their last delivery, and, for the owner, change who may send or unlink. The bot and the send
 * API read the same shared document (shared/teamChats.ts).
 *
 *   GET  /api/teams                                       {"teams": [...]}
 *   POST /api/teams/link    {"code", "name"}              {"ok", "message", "team"}
 *   POST /api/teams/access  {"name", "members", "member_group"}  {"ok", "message", "team"}
 *   POST /api/teams/unlink  {"name"}                      {"ok", "message"}
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Clock } from '../shared/clock.js';
import { type LinkStore, VerifyError } from '../shared/linking.js';
import { maySend, type TeamChat, type TeamChatStore, TeamError } from '../shared/teamChats.js';
import { withUsage } from '../shared/httpBody.js';
import { userNameProblem } from '../shared/userName.js';
import type { WebMetrics } from './metrics.js';
import { html, raw, type SafeHtml } from '../shared/html.js';
import type { DashboardPanel } from './pages.js';
import { type AttemptLimiter, isRefusal } from './rateLimit.js';
import type { Assets } from './static.js';

/** What the team chats feature needs. */
export interface TeamsPluginOptions {
  teams: TeamChatStore;
  links: LinkStore;
  /** The limiter of code guesses, shared with the personal link (one code space). */
  verifyLimiter: AttemptLimiter;
  /** When set, only its members may link a team chat (as for a personal chat). */
  analystGroup: string | undefined;
  isMember: (username: string, group: string) => boolean;
  /** Whether a server account / a Linux group of this name exists. */
  accountExists: (name: string) => boolean;
  groupExists: (name: string) => boolean;
  /** The accounts in a Linux group (listed and primary), or null when there is no such group. */
  groupMembers: (name: string) => string[] | null;
  botUsername: string | undefined;
  clock: Clock;
  assets: Assets;
  panels: DashboardPanel[];
  metrics?: WebMetrics | undefined;
}

const LinkBody = withUsage(z.object({ code: z.union([z.string(), z.number()]).optional(), name: z.string().optional() }).strict(), 'Send {"code": "123456", "name": "finance-alerts"}.');
const NameBody = withUsage(z.object({ name: z.string({ error: 'name: give the team chat name' }) }).strict(), 'Send {"name": "<team chat>"}.');
const AccessBody = withUsage(
  z
  .object({
    name: z.string({ error: 'name: give the team chat name' }),
    members: z.union([z.string(), z.array(z.string())], { error: 'members: a list of server account names' }).optional(),
      member_group: z.string().nullable().optional(),
    })
    .strict(),
  'Send {"name", "members": ["alice", "bob"], "member_group": "finance" or null}.',
);

/** A team chat as the API shows it to one analyst; `groupMembers` lists its Linux group's accounts. */
function teamView(name: string, t: TeamChat, viewer: string, groupMembers: (group: string) => string[] | null): Record<string, unknown> {
  const owned = t.owner === viewer;
  let inGroup: string[] | null = null;
  if (t.member_group) {
    try {
      inGroup = groupMembers(t.member_group);
    } catch {
      // The user database did not answer: the list is unknown for now, the rest is shown.
      inGroup = null;
    }
  }
  return {
    name,
    ...(t.title ? { title: t.title } : {}),
    owner: t.owner,
    owned,
    linked_at: t.linked_at,
    members: t.members,
    member_group: t.member_group ?? null,
    // Everyone the Linux group lets send now (null: no group, or it cannot be read).
    member_group_members: inGroup,
    last_delivery_at: t.last_delivery_at ?? null,
    ...(t.delivery_refused ? { delivery_refused: t.delivery_refused } : {}),
    // Who silenced what is the owner's business; a sender sees their own scripts only.
    silenced: Object.entries(t.silenced ?? {})
      .filter(([key]) => owned || key.startsWith(`${viewer}/`))
      .map(([key, s]) => ({ sender: key.slice(0, key.indexOf('/')), script: key.slice(key.indexOf('/') + 1), ...(s.muted ? { muted: true } : {}), ...(s.until ? { until: s.until } : {}), by: s.by })),
  };
}

/** The names in a members field: a list, or text separated by commas, spaces or new lines. */
function memberNames(raw: string | string[] | undefined): string[] {
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : raw.split(/[\s,]+/);
  return [...new Set(list.map((m) => m.trim()).filter((m) => m !== ''))];
}

const ICON = raw(
  '<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M9 11a4 4 0 1 1 0-8 4 4 0 0 1 0 8Zm0 2c3.3 0 7 1.6 7 4v3H2v-3c0-2.4 3.7-4 7-4Zm7.5-2.2a3.5 3.5 0 1 0 0-6.6A6 6 0 0 1 18 7a6 6 0 0 1-1.5 3.8ZM18.6 13c1.9.7 3.4 1.9 3.4 3.7V20h-4v-3c0-1.5-.7-2.9-1.9-4Z"/></svg>',
);

/** The card; the page's script fills the list from GET /api/teams. */
export function renderTeamsCard(opts: { scriptUrl: string; cssUrl: string; botUsername: string | undefined; mayLink: boolean; analystGroup: string | undefined }): SafeHtml {
  const bot = opts.botUsername ? `@${opts.botUsername}` : 'the notifications bot';
  const linkForm = opts.mayLink
    ? html`<h3 class="section-title">Link a group</h3>
    <ol class="steps">
      <li><span class="step-num" aria-hidden="true">1</span><div>Link your own Telegram above, then, as an administrator of the group, add ${bot} to it and send <kbd>/start</kbd> <strong>in the group</strong>.</div></li>
      <li><span class="step-num" aria-hidden="true">2</span><div>Enter the code it posts there and a name for the group. The code works for you only (the administrator who asked for it); you become the team chat's owner and decide who else may send to it.</div></li>
    </ol>
    <form id="tm-link-form" class="team-link-form" novalidate>
      <div class="team-field">
        <label for="tm-code">Code from the group</label>
        <input id="tm-code" name="code" type="text" inputmode="numeric" autocomplete="off" pattern="[0-9 ]*" maxlength="7" spellcheck="false" placeholder="123456" required>
      </div>
      <div class="team-field">
        <label for="tm-name">Team chat name</label>
        <input id="tm-name" name="name" type="text" autocomplete="off" spellcheck="false" maxlength="64" placeholder="finance-alerts" aria-describedby="tm-name-hint" required>
      </div>
      <button type="submit" class="btn btn-primary" id="tm-link">Link group</button>
      <p id="tm-name-hint" class="hint">Lower-case letters, digits, - and _. Scripts send there with <code>"to": ["finance-alerts"]</code>, the shell with <code>notify --to finance-alerts</code>.</p>
      <p id="tm-link-error" class="field-error" hidden></p>
    </form>`
    : html`<div class="notice notice-warn"><p>Linking team chats is open to members of the <strong>${opts.analystGroup ?? ''}</strong> group only.</p></div>`;
  return html`<link rel="stylesheet" href="${opts.cssUrl}">
<script src="${opts.scriptUrl}" defer></script>
<section class="card" id="teams-card" aria-labelledby="tm-title" aria-busy="true">
  <div class="card-head">
    <div class="card-icon card-icon-teams">${ICON}</div>
    <div class="card-titles">
      <h2 id="tm-title">Team chats</h2>
      <p class="card-sub">Telegram groups your scripts can post to, and who may send there.</p>
    </div>
  </div>
  <div class="live" id="tm-live" role="status" aria-live="polite" aria-atomic="true"></div>
  <div class="card-body">
    <p class="hint" id="tm-loading">Loading your team chats…</p>
    <noscript><p class="notice notice-warn">This panel needs JavaScript.</p></noscript>
    <div class="notice notice-error" id="tm-error" hidden><p id="tm-error-text"></p></div>
    <p id="tm-empty" hidden>No team chats yet: none you own, and nobody has allowed you to send to theirs.</p>
    <ul class="team-list" id="tm-list" aria-label="Your team chats"></ul>
  </div>
  <div class="card-body">
    ${linkForm}
  </div>
</section>
<dialog class="dialog" id="tm-unlink-dialog" aria-labelledby="tm-unlink-title" aria-describedby="tm-unlink-desc">
  <h2 id="tm-unlink-title">Unlink this team chat?</h2>
  <p id="tm-unlink-desc">Scripts sending to it will be refused. The bot stays in the group; you can link it again with a new code.</p>
  <div class="dialog-actions">
    <button type="button" class="btn btn-secondary" id="tm-unlink-cancel">Cancel</button>
    <button type="button" class="btn btn-danger" id="tm-unlink-confirm">Unlink</button>
  </div>
</dialog>`;
}

/** The team chats card and its API, as a Fastify plugin. */
export async function teamsPlugin(app: FastifyInstance, opts: TeamsPluginOptions): Promise<void> {
  const { teams } = opts;
  const mayLink = (user: string): boolean => opts.analystGroup === undefined || opts.isMember(user, opts.analystGroup);
  opts.assets.add('teams.js');
  opts.assets.add('teams.css');

  opts.panels.push({
    id: 'teams',
    order: 15,
    render: async (identity) =>
      renderTeamsCard({ scriptUrl: opts.assets.url('teams.js'), cssUrl: opts.assets.url('teams.css'), botUsername: opts.botUsername, mayLink: mayLink(identity.username), analystGroup: opts.analystGroup }),
  });

  function teamProblem(reply: FastifyReply, err: unknown): FastifyReply {
    if (err instanceof TeamError) return reply.code(err.status).send({ error: err.message });
    throw err;
  }

  /** The team chats the user owns or may send to, owned first, by name. */
  async function visible(user: string): Promise<Array<Record<string, unknown>>> {
    const all = await teams.all();
    return Object.entries(all)
      .filter(([, t]) => maySend(t, user, opts.isMember))
      .sort(([a, ta], [b, tb]) => Number(tb.owner === user) - Number(ta.owner === user) || a.localeCompare(b))
      .map(([name, t]) => teamView(name, t, user, opts.groupMembers));
  }

  app.get('/api/teams', async (request) => ({ teams: await visible(request.caller.username) }));

  // Who may link is asked before the body is checked: a refusal is the same whatever was sent.
  const mayLinkHook = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const user = request.caller.username;
    if (!mayLink(user)) await reply.code(403).send({ error: `Only members of the group '${opts.analystGroup ?? ''}' can link team chats, and ${user} is not one.` });
  };

  app.post<{ Body: z.infer<typeof LinkBody> }>('/api/teams/link', { preValidation: mayLinkHook, schema: { body: LinkBody } }, async (request, reply) => {
    const user = request.caller.username;
    const code = String(request.body.code ?? '').replace(/\s+/g, '');
    const name = (request.body.name ?? '').trim();
    if (code === '') return reply.code(400).send({ error: 'Enter the 6-digit code the bot posted in the group.' });
    if (!/^\d{6}$/.test(code)) return reply.code(400).send({ error: "A code is 6 digits. Check the bot's message in the group and try again." });
    if (name === '') return reply.code(400).send({ error: 'Give the team chat a name, such as finance-alerts.' });
    const attempt = opts.verifyLimiter.take(user);
    if (isRefusal(attempt)) {
      request.log.warn({ user, ip: request.ip, limit: attempt.scope }, 'team chat code attempt refused: too many attempts');
      opts.metrics?.codeVerification('rate_limited');
      reply.header('retry-after', String(attempt.retryAfterSeconds));
      return reply.code(429).send({ error: `Too many code attempts. Wait ${Math.ceil(attempt.retryAfterSeconds / 60)} minute(s), then try again with a fresh code (/start in the group).` });
    }
    try {
      const linked = await teams.linkWithCode(user, code, name, opts.links);
      attempt.refund();
      opts.metrics?.codeVerification('ok');
      request.log.info({ user, team: name, chat_id: linked.team.chat_id }, 'team chat linked');
      return { ok: true, message: `The group is linked as ${name}. Scripts send there with "to": ["${name}"].`, team: teamView(name, linked.team, user, opts.groupMembers) };
    } catch (err) {
      // A right code entered by someone it was not given to is an attempt too: not refunded.
      if (err instanceof TeamError && err.status === 403) {
        request.log.warn({ user, ip: request.ip }, 'team chat code refused: not the administrator who asked for it');
        opts.metrics?.codeVerification('invalid');
        return reply.code(403).send({ error: err.message });
      }
      if (err instanceof VerifyError) {
        request.log.warn({ user, ip: request.ip, reason: err.reason }, 'team chat code attempt failed');
        opts.metrics?.codeVerification('invalid');
        const text = err.reason === 'expired' ? 'This code has expired. Send /start in the group for a new one.' : err.reason === 'invalid' ? 'This code is not valid. Check it, or send /start in the group for a new one.' : err.message;
        return reply.code(400).send({ error: text });
      }
      // A refused name or a personal chat's code is not a guess.
      attempt.refund();
      return teamProblem(reply, err);
    }
  });

  app.post<{ Body: z.infer<typeof AccessBody> }>('/api/teams/access', { schema: { body: AccessBody } }, async (request, reply) => {
    const user = request.caller.username;
    const body = request.body;
    const members = memberNames(body.members);
    const group = (body.member_group ?? '').trim();
    for (const m of members) {
      if (userNameProblem(m) !== null) return reply.code(400).send({ error: `'${m.slice(0, 64)}' is not a server account name.` });
      if (!opts.accountExists(m)) return reply.code(400).send({ error: `There is no account named '${m}' on this server; nothing was changed.` });
    }
    if (members.length > 200) return reply.code(400).send({ error: 'At most 200 analysts by name; use a Linux group for more.' });
    if (group !== '' && (userNameProblem(group) !== null || !opts.groupExists(group))) {
      return reply.code(400).send({ error: `There is no Linux group named '${group.slice(0, 64)}' on this server; nothing was changed.` });
    }
    try {
      const team = await teams.setAccess(user, body.name, members, group === '' ? null : group);
      request.log.info({ user, team: body.name, members: members.length, member_group: group || undefined }, 'team chat access changed');
      const allowed = [members.length > 0 ? members.join(', ') : '', group ? `members of ${group}` : ''].filter(Boolean).join(' and ');
      return { ok: true, message: `Saved: ${allowed ? `you and ${allowed} may` : 'only you may'} send to ${body.name}.`, team: teamView(body.name, team, user, opts.groupMembers) };
    } catch (err) {
      return teamProblem(reply, err);
    }
  });

  app.post<{ Body: z.infer<typeof NameBody> }>('/api/teams/unlink', { schema: { body: NameBody } }, async (request, reply) => {
    const user = request.caller.username;
    const body = request.body;
    try {
      await teams.unlink(user, body.name);
      request.log.info({ user, team: body.name }, 'team chat unlinked');
      return { ok: true, message: `${body.name} is unlinked; sends to it are refused from now on.` };
    } catch (err) {
      return teamProblem(reply, err);
    }
  });
}
