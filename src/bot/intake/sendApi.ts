/**
 * The send API: HTTP on the bot's unix socket. Identity comes from the kernel (peer
 * credentials) and is checked first; JSON bodies are the routes' schemas (shared/contract.ts),
 * checked at the edge (the multipart /send_photo checks its fields once they are read);
 * every error is `{"error": "..."}` a person can act on.
 */
import multipart from '@fastify/multipart';
import type { z } from 'zod';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { describeZodError, SendPhotoRequestSchema, SendRequestSchema, type SendPhotoRequest } from '../../shared/contract.js';
import { zodSchemaController, zodValidator } from '../../shared/httpBody.js';
import { DiskFullError, outOfSpaceCode } from '../../shared/diskSpace.js';
import { CorruptFileError } from '../../shared/jsonFile.js';
import { errorPlugin, HttpProblem } from '../../shared/httpErrors.js';
import type { Logger } from '../../shared/logger.js';
import { guardConnections } from '../../shared/connectionGuard.js';
import { isUserInGroup, UserDatabaseError } from '../../shared/posix.js';
import { type Clock, systemClock } from '../../shared/clock.js';
import { maySend, type TeamChatStore, teamSilence } from '../../shared/teamChats.js';
import { QueueFullError } from '../delivery/deliverer.js';
import { UserQuotaError } from '../delivery/notifier.js';
import { StoreUnavailableError } from '../../shared/documents.js';
import { authorize, type Caller, callerFromUid, callerOfConnection, notePeer, peerUidOf } from './identity.js';
import type { Notifier, Submission, SubmitResult } from '../delivery/notifier.js';
import { checkUpload, PhotoError, readCallerPhoto } from './photos.js';
import type { Content } from '../format/render.js';

/** What the send API needs. */
export interface SendApiDeps {
  notifier: Notifier;
  log: Logger;
  trustedUsers: readonly string[];
  analystGroup?: string | undefined;
  sendWaitMs: number;
  sendWaitMaxMs: number;
  maxBodyBytes: number;
  maxPhotoBytes: number;
  /** A request must arrive whole within this long (else 408). */
  requestTimeoutMs: number;
  /** Connections one uid may hold open at once. */
  maxConnectionsPerUid: number;
  /**
   * Extra fields for GET /health; `problems` (what keeps the service from working fully,
   * for an operator) makes the status "degraded".
   */
  health: () => Promise<Record<string, unknown> & { problems?: string[] }>;
  /** What each channel of a user is doing (GET /channels); absent: 404. */
  channels?: (user: string) => Promise<Record<string, unknown>>;
  /** Overrides the peer uid (for app.inject() tests, which have no socket). */
  identify?: (req: FastifyRequest) => number | null;
  /** For team chat rules (a snooze's end); the system clock by default. */
  clock?: Clock;
  /** Team chats, for `to`; without it only "me" is a destination. */
  teams?: TeamChatStore;
  /** Linux group membership (a team chat's member group); the system's by default. */
  isMember?: (user: string, group: string) => boolean;
}

/** Parses `Prefer`: respond-async and/or wait=<seconds>. */
export function parsePrefer(header: string | string[] | undefined, defaultMs: number, maxMs: number): { respondAsync: boolean; waitMs: number } {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  let respondAsync = false;
  let waitMs = defaultMs;
  for (const token of text.split(/[,;]/).map((t) => t.trim().toLowerCase())) {
    if (token === 'respond-async') respondAsync = true;
    const m = /^wait\s*=\s*"?(\d+(?:\.\d+)?)"?$/.exec(token);
    if (m) waitMs = Math.min(maxMs, Number(m[1]) * 1000);
  }
  return { respondAsync, waitMs };
}

function contentOf(body: { title?: string | undefined; message?: string | undefined; parse_mode?: Content['parseMode'] }, raw: string | undefined): Content {
  if (raw !== undefined) return { text: raw, parseMode: body.parse_mode };
  return { title: body.title, message: body.message, parseMode: body.parse_mode };
}

/** Builds the send API application (not yet listening). */
export async function buildSendApi(deps: SendApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: deps.maxBodyBytes,
    return503OnClosing: true,
    forceCloseConnections: true,
    // A refused body names every problem (describeZodError), as the send API always has.
    schemaController: zodSchemaController(zodValidator(describeZodError), { responses: false }),
  });
  app.server.on('connection', notePeer);
  const connections = guardConnections(app.server, {
    requestTimeoutMs: deps.requestTimeoutMs,
    perCallerMax: deps.maxConnectionsPerUid,
    totalMax: 0,
    // Root and the bot's own account are not analysts: counted in no one's share.
    callerOf: (socket) => {
      const uid = peerUidOf(socket);
      return uid === null || uid === 0 || uid === process.getuid?.() ? null : String(uid);
    },
    describeCaller: (uid) => `uid ${uid}`,
    settings: { requestTimeout: 'NOTIFY_REQUEST_TIMEOUT', perCaller: 'NOTIFY_MAX_CONNECTIONS_PER_UID', total: '' },
  });
  await app.register(multipart, {
    limits: { fileSize: deps.maxPhotoBytes, files: 1, fields: 20, fieldSize: deps.maxBodyBytes, parts: 22 },
  });

  await app.register(errorPlugin, {
    limits: { bodyBytes: deps.maxBodyBytes, fileBytes: deps.maxPhotoBytes, contentTypes: 'application/json (or multipart/form-data to /send_photo)' },
    // A body the send API cannot read is a 400 whatever its type (docs/notifications.md).
    unsupportedMediaStatus: 400,
    serverError: 'Internal error; the notification was not accepted (see the bot log).',
    notFound: (req) => `no such endpoint: ${req.method} ${req.url.split('?')[0]}`,
    log: (req, err) => deps.log.error({ err, url: req.url }, 'send API request failed'),
    known: (err, req) => {
      if (err instanceof UserDatabaseError) {
        deps.log.error({ err, url: req.url }, 'could not tell who is calling: the user database did not answer');
        return { status: 503, headers: { 'retry-after': '5' }, text: `cannot tell who is calling right now: ${err.message}; nothing was accepted, try again shortly` };
      }
      if (err instanceof CorruptFileError) {
        deps.log.error({ err, url: req.url }, 'a data file the bot needs is unreadable; sends are refused until it is repaired');
        return { status: 503, headers: { 'retry-after': '60' }, text: `the notification service cannot accept this now: ${err.message} The operator has to repair it; nothing was accepted.` };
      }
      if (err instanceof DiskFullError || outOfSpaceCode(err)) {
        const text = err instanceof DiskFullError ? err.message : new DiskFullError(`${outOfSpaceCode(err)} while storing it`).message;
        return { status: 507, headers: { 'retry-after': '60' }, text };
      }
      return null;
    },
  });

  const callers = new WeakMap<FastifyRequest, Caller>();
  /** Who is calling (asked of the kernel once per request). */
  function callerOf(req: FastifyRequest): Caller {
    const known = callers.get(req);
    if (known) return known;
    const uid = deps.identify ? deps.identify(req) : undefined;
    const caller = uid === undefined ? callerOfConnection(req.raw.socket, deps.trustedUsers) : uid === null ? null : callerFromUid(uid, deps.trustedUsers);
    if (caller === null) throw new HttpProblem(403, 'cannot tell who is calling (no peer credentials); connect through the unix socket');
    callers.set(req, caller);
    return caller;
  }
  /** A route's first check: an unknown caller is refused (403) before its body is looked at. */
  const identified = async (req: FastifyRequest): Promise<void> => {
    callerOf(req);
  };

  function target(req: FastifyRequest, caller: Caller, requested: string | undefined): string {
    const a = authorize(caller, requested, deps.analystGroup);
    if (!a.ok) {
      deps.log.warn({ caller: caller.name ?? `uid ${caller.uid}`, requested, path: req.url }, `send refused: ${a.error}`);
      throw new HttpProblem(a.status, a.error);
    }
    return a.user;
  }

  /**
   * The team chats among `to`, checked before anything is sent: each must exist, take
   * messages, and let `user` send (its owner, a named member, or a member of its group;
   * a trusted service sending as itself may send anywhere). One refusal refuses all.
   */
  async function teamsOf(req: FastifyRequest, caller: Caller, user: string, script: string | undefined, to: readonly string[] | undefined): Promise<Array<NonNullable<Submission['team']> | null>> {
    if (!to) return [null];
    const out: Array<NonNullable<Submission['team']> | null> = [];
    for (const name of to) {
      if (name === 'me') {
        out.push(null);
        continue;
      }
      const team = deps.teams ? await deps.teams.get(name) : null;
      const allowed = team !== null && ((caller.trusted && user === caller.name) || maySend(team, user, deps.isMember ?? isUserInGroup));
      if (!team || !allowed) {
        deps.log.warn({ caller: caller.name ?? `uid ${caller.uid}`, user, team: name, path: req.url }, 'send refused: not allowed to send to the team chat');
        throw new HttpProblem(403, `'${user}' may not send to the team chat '${name}' (no such team chat, or its owner has not allowed you); nothing was sent`);
      }
      if (team.delivery_refused) {
        throw new HttpProblem(404, `the team chat '${name}' does not take messages (${team.delivery_refused.reason}); it takes messages again once someone adds the bot back to the group; nothing was sent`);
      }
      out.push({ name, chatId: team.chat_id, silence: teamSilence(team, user, script, (deps.clock ?? systemClock).now()) });
    }
    return out;
  }

  async function submitOne(sub: Submission, prefer: ReturnType<typeof parsePrefer>): Promise<SubmitResult> {
    try {
      return await deps.notifier.submit(sub, prefer);
    } catch (err) {
      if (err instanceof UserQuotaError) {
        deps.log.warn({ user: sub.user, reason: err.message }, 'send refused: the analyst\'s queue quota is reached');
        throw new HttpProblem(429, err.message, { 'retry-after': String(err.retryAfterSeconds) });
      }
      if (err instanceof QueueFullError || err instanceof StoreUnavailableError) {
        if (err instanceof StoreUnavailableError) deps.log.warn({ reason: err.message }, 'send refused: the database is unreachable');
        throw new HttpProblem(503, err.message, { 'retry-after': String(err.retryAfterSeconds) });
      }
      throw err;
    }
  }

  /** Submits to each destination; one answer: the first destination's, with `to` saying what each did. */
  async function submit(req: FastifyRequest, reply: FastifyReply, sub: Submission, caller: Caller, to?: readonly string[]): Promise<void> {
    const teams = await teamsOf(req, caller, sub.user, sub.script, to);
    const prefer = parsePrefer(req.headers.prefer, deps.sendWaitMs, deps.sendWaitMaxMs);
    if (!to) {
      const result = await submitOne(sub, prefer);
      void reply.code(result.status).send(result.body);
      return;
    }
    const results = await Promise.all(teams.map((team) => submitOne(team ? { ...sub, team } : sub, prefer)));
    const byName: Record<string, unknown> = {};
    to.forEach((name, i) => (byName[name] = results[i]!.body));
    const accepted = results.filter((r) => r.status !== 404);
    if (accepted.length === 0) {
      void reply.code(404).send(results[0]!.body);
      return;
    }
    const status = accepted.some((r) => r.status === 202) ? 202 : 200;
    void reply.code(status).send({ ...accepted[0]!.body, to: byName });
  }

  app.get('/health', async () => {
    const h = await deps.health();
    return { status: h.problems && h.problems.length > 0 ? 'degraded' : 'ok', ...h, connections: connections.stats() };
  });

  // What the user's channels are doing: the dashboard's delivery status (as the analyst may
  // ask for themselves, a trusted service for anyone).
  app.get<{ Querystring: { user?: string } }>('/channels', async (req, reply) => {
    const caller = callerOf(req);
    const requested = typeof req.query.user === 'string' && req.query.user !== '' ? req.query.user : undefined;
    const user = target(req, caller, requested);
    if (!deps.channels) return reply.code(404).send({ error: 'channel status is not available here' });
    return { user, ...(await deps.channels(user)) };
  });

  app.post<{ Body: z.infer<typeof SendRequestSchema> }>('/send', { preValidation: identified, schema: { body: SendRequestSchema } }, async (req, reply) => {
    const caller = callerOf(req);
    const body = req.body;
    const user = target(req, caller, body.user);
    await submit(req, reply, { user, content: contentOf(body, body.text), script: body.script, data: body.data, urgent: body.urgent, onlyIfChanged: body.only_if_changed, sendResolved: body.send_resolved, resolves: body.resolves }, caller, body.to);
  });

  app.post('/send_photo', async (req, reply) => {
    const caller = callerOf(req);
    let fields: Record<string, unknown>;
    let upload: Buffer | undefined;
    if (req.isMultipart()) {
      fields = {};
      try {
        for await (const part of req.parts()) {
          if (part.type === 'file') {
            if (part.fieldname !== 'photo') throw new HttpProblem(400, `unexpected file field '${part.fieldname}'; the image goes in field 'photo'`);
            upload = await part.toBuffer();
          } else if (part.fieldname === 'urgent' || part.fieldname === 'only_if_changed' || part.fieldname === 'send_resolved') {
            fields[part.fieldname] = String(part.value) === 'true' ? true : String(part.value) === 'false' ? false : part.value;
          } else if (part.fieldname === 'to') {
            const v = String(part.value);
            try {
              fields.to = v.startsWith('[') ? JSON.parse(v) : v.split(',').map((t) => t.trim());
            } catch {
              throw new HttpProblem(400, "field 'to' must be a JSON list of names or a comma list");
            }
          } else if (part.fieldname === 'data') {
            try {
              fields.data = JSON.parse(String(part.value));
            } catch {
              throw new HttpProblem(400, "field 'data' must be a JSON object");
            }
          } else fields[part.fieldname] = part.value;
        }
      } catch (err) {
        if (err instanceof HttpProblem) throw err;
        const e = err as FastifyError;
        if (e.statusCode === 413) throw err;
        throw new HttpProblem(400, `invalid multipart body: ${e.message}`);
      }
    } else {
      if (req.body === null || typeof req.body !== 'object') throw new HttpProblem(400, 'send a JSON object or multipart/form-data');
      fields = req.body as Record<string, unknown>;
    }
    const parsed = SendPhotoRequestSchema.safeParse(fields);
    if (!parsed.success) throw new HttpProblem(400, describeZodError(parsed.error, fields));
    const body: SendPhotoRequest = parsed.data;
    if (upload && body.photo_path) throw new HttpProblem(400, "send either the 'photo' file or 'photo_path', not both");
    if (!upload && !body.photo_path) throw new HttpProblem(400, "no photo: upload the image in field 'photo' or give 'photo_path'");
    const user = target(req, caller, body.user);
    let photo: Buffer;
    try {
      photo = upload ? checkUpload(upload, deps.maxPhotoBytes) : await readCallerPhoto(body.photo_path!, caller, deps.maxPhotoBytes);
    } catch (err) {
      if (err instanceof PhotoError) {
        if (err.status === 403) deps.log.warn({ caller: caller.name, path: body.photo_path }, `photo refused: ${err.message}`);
        throw new HttpProblem(err.status, err.message);
      }
      throw err;
    }
    await submit(req, reply, { user, content: contentOf(body, body.caption), photo, script: body.script, data: body.data, urgent: body.urgent, onlyIfChanged: body.only_if_changed, sendResolved: body.send_resolved, resolves: body.resolves }, caller, body.to);
  });

  return app;
}
