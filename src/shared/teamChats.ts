/**
 * Team chats: Telegram groups (or channels) linked under a name, e.g. `finance-alerts`,
 * by the analyst who owns the link. The owner decides who else may send there: analysts by
 * name, and/or every member of a Linux group. Kept in the shared document
 * `team_chats.json`: `{"<name>": {"chat_id", "owner", "linked_at", "title"?, "members":
 * [...], "member_group"?, "delivery_refused"?, "last_delivery_at"?, "silenced"?}}`.
 * `silenced` holds the scripts whose alerts are muted or snoozed in that chat (from the
 * buttons under a group alert), keyed `<sender>/<script>`.
 */
import { z } from 'zod';
import { type Clock, systemClock } from './clock.js';
import { type SharedDocument, sharedDocument } from './documents.js';
import type { LinkStore } from './linking.js';
import { deliveryClears, RefusalMarkSchema, refusalMark } from './refusalMark.js';

/** A team chat's name: lower-case letters, digits, `-` and `_`; not `me`. */
export const TEAM_NAME_RE = /^[a-z0-9][a-z0-9_-]{1,63}$/;

const TeamSchema = z.looseObject({
  chat_id: z.number().int(),
  owner: z.string(),
  linked_at: z.string(),
  members: z.array(z.string()).default([]),
  member_group: z.string().optional(),
  /** Set when Telegram refused delivery for good (the bot was removed from the group). */
  delivery_refused: z.optional(RefusalMarkSchema),
  last_delivery_at: z.string().optional(),
  /** The group's title in Telegram when it was linked (shown on the dashboard). */
  title: z.string().optional(),
  silenced: z.record(z.string(), z.looseObject({ muted: z.boolean().optional(), until: z.string().optional(), by: z.string() })).optional(),
});
const TeamsSchema = z.record(z.string(), TeamSchema);

export type TeamChat = z.infer<typeof TeamSchema>;
type Teams = z.infer<typeof TeamsSchema>;

/** A refused team operation; the message is for the analyst. */
export class TeamError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409,
    message: string,
  ) {
    super(message);
    this.name = 'TeamError';
  }
}

/** Who may send to a team chat: its owner, the analysts it names, members of its Linux group. */
export function maySend(team: TeamChat, user: string, isMember: (user: string, group: string) => boolean): boolean {
  if (team.owner === user || team.members.includes(user)) return true;
  return team.member_group !== undefined && isMember(user, team.member_group);
}

/** Why a script's alerts do not reach a team chat now (muted or snoozed there), or null. */
export function teamSilence(team: TeamChat, sender: string, script: string | undefined, now: number): { kind: 'muted' } | { kind: 'snoozed'; until: string } | null {
  if (!script) return null;
  const s = team.silenced?.[`${sender}/${script}`];
  if (!s) return null;
  if (s.muted) return { kind: 'muted' };
  if (s.until && Date.parse(s.until) > now) return { kind: 'snoozed', until: s.until };
  return null;
}

/** The team chats of one data directory. */
export class TeamChatStore {
  readonly file: SharedDocument<Teams>;

  constructor(
    readonly dataDir: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.file = sharedDocument(dataDir, 'team_chats.json', TeamsSchema, () => ({}));
  }

  private now(): string {
    return new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  /** Every team chat, by name. */
  async all(): Promise<Teams> {
    return this.file.read();
  }

  /** One team chat, or null. */
  async get(name: string): Promise<TeamChat | null> {
    return this.file.pick((teams) => teams[name] ?? null);
  }

  /** The name of the team chat with this chat id, or null. */
  async nameOfChat(chatId: number): Promise<string | null> {
    const teams = await this.file.read();
    return Object.keys(teams).find((n) => teams[n]!.chat_id === chatId) ?? null;
  }

  /**
   * Links the group whose `/start` gave `code` under `name`, owned by `owner`. Only an
   * entitled analyst may: one whose own Telegram (their personal link) is the group
   * administrator who sent /start, or, for an anonymous /start, any administrator then (the
   * code's `linkers`). Anyone else who saw the code in the group gets 403. The code is used
   * up only when the link is made. Throws VerifyError (bad code) or TeamError.
   */
  async linkWithCode(owner: string, rawCode: unknown, name: string, links: LinkStore): Promise<{ name: string; team: TeamChat }> {
    if (!TEAM_NAME_RE.test(name) || name === 'me') {
      throw new TeamError(400, 'A team chat name is 2-64 lower-case letters, digits, - or _ (e.g. finance-alerts), and not "me".');
    }
    const team = await links.consumeCode(rawCode, async (chatId, entry) => {
      if (chatId > 0) throw new TeamError(400, 'That code came from a personal chat. Add the bot to the group and send /start in the group itself.');
      const linkers = entry.linkers ?? [];
      const own = await links.linkOf(owner);
      if (!own) {
        throw new TeamError(403, 'Link your own Telegram first (the Telegram card): a group code links the group only for the administrator who asked for it, recognised by their own Telegram. Nothing was changed.');
      }
      if (!linkers.includes(own.chat_id)) {
        throw new TeamError(403, 'This code is not yours to use: only the group administrator who sent /start in the group (with their own Telegram linked to their account here) can link it. Ask them, or, as an administrator, send /start in the group yourself. Nothing was changed.');
      }
      return this.file.update((teams) => {
        const existing = teams[name];
        if (existing && existing.owner !== owner) throw new TeamError(409, `The name '${name}' is taken by another team chat; choose another.`);
        const other = Object.keys(teams).find((n) => teams[n]!.chat_id === chatId && n !== name);
        if (other !== undefined) throw new TeamError(409, `This group is already linked as '${other}'.`);
        const title = entry.title;
        const t: TeamChat = { chat_id: chatId, owner, linked_at: this.now(), ...(title ? { title } : {}), members: existing?.members ?? [], ...(existing?.member_group ? { member_group: existing.member_group } : {}) };
        return { next: { ...teams, [name]: t }, result: t };
      });
    });
    return { name, team };
  }

  /** The owner sets who else may send: analysts by name and/or a Linux group (null: none). */
  async setAccess(owner: string, name: string, members: readonly string[], memberGroup: string | null): Promise<TeamChat> {
    return this.file.update((teams) => {
      const t = teams[name];
      if (!t) throw new TeamError(404, `There is no team chat named '${name}'.`);
      if (t.owner !== owner) throw new TeamError(403, `Only the owner of '${name}' (${t.owner}) can change who may send to it.`);
      const updated: TeamChat = { ...t, members: [...new Set(members)].sort() };
      if (memberGroup) updated.member_group = memberGroup;
      else delete updated.member_group;
      return { next: { ...teams, [name]: updated }, result: updated };
    });
  }

  /** The owner removes the link. */
  async unlink(owner: string, name: string): Promise<void> {
    await this.file.update((teams) => {
      const t = teams[name];
      if (!t) throw new TeamError(404, `There is no team chat named '${name}'.`);
      if (t.owner !== owner) throw new TeamError(403, `Only the owner of '${name}' (${t.owner}) can unlink it.`);
      const next = { ...teams };
      delete next[name];
      return { next, result: undefined };
    });
  }

  /** Records that Telegram refused delivery to the chat for good (the bot was removed), or clears it. */
  async markDeliveryRefused(chatId: number, reason: string | null): Promise<void> {
    await this.file.update((teams) => {
      const name = Object.keys(teams).find((n) => teams[n]!.chat_id === chatId);
      if (name === undefined) return { result: undefined };
      const t = { ...teams[name]! };
      if (reason === null) {
        if (!t.delivery_refused) return { result: undefined };
        delete t.delivery_refused;
      } else t.delivery_refused = refusalMark(this.clock.now(), reason);
      return { next: { ...teams, [name]: t }, result: undefined };
    });
  }

  /**
   * Records a delivery to the chat that Telegram answered at `answeredAt` (ms; shown on the
   * dashboard), and clears the refusal mark by the rule of refusalMark.ts, the one personal
   * chats follow too.
   */
  async noteDelivery(chatId: number, answeredAt: number): Promise<void> {
    await this.file.update((teams) => {
      const name = Object.keys(teams).find((n) => teams[n]!.chat_id === chatId);
      if (name === undefined) return { result: undefined };
      const t: TeamChat = { ...teams[name]!, last_delivery_at: this.now() };
      if (deliveryClears(t.delivery_refused, answeredAt)) delete t.delivery_refused;
      return { next: { ...teams, [name]: t }, result: undefined };
    });
  }

  /**
   * Mutes (until null) or snoozes (until a time) one sender's script in a team chat, or
   * clears it (`until` undefined and muted false). `by` is who pressed the button.
   */
  async silence(chatId: number, sender: string, script: string, change: { muted: true; by: string } | { until: number; by: string } | null): Promise<string | null> {
    return this.file.update((teams) => {
      const name = Object.keys(teams).find((n) => teams[n]!.chat_id === chatId);
      if (name === undefined) return { result: null };
      const silenced = { ...(teams[name]!.silenced ?? {}) };
      const key = `${sender}/${script}`;
      if (change === null) delete silenced[key];
      else silenced[key] = 'muted' in change ? { muted: true, by: change.by } : { until: new Date(change.until).toISOString(), by: change.by };
      const t: TeamChat = { ...teams[name]!, silenced };
      if (Object.keys(silenced).length === 0) delete t.silenced;
      return { next: { ...teams, [name]: t }, result: name };
    });
  }

  /** Telegram moved a group to a supergroup with a new id (migrate_to_chat_id): follow it. */
  async migrateChat(fromChatId: number, toChatId: number): Promise<string | null> {
    return this.file.update((teams) => {
      const name = Object.keys(teams).find((n) => teams[n]!.chat_id === fromChatId);
      if (name === undefined) return { result: null };
      return { next: { ...teams, [name]: { ...teams[name]!, chat_id: toChatId } }, result: name };
    });
  }
}
