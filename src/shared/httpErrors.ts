/**
 * How the three HTTP APIs (the bot's send API, the gateway's dispatch API, the dashboard)
 * answer errors, as one Fastify plugin: one `{"error": "..."}` schema (`$ref: 'error#'`),
 * one table from Fastify's own error codes to texts, the 404 answer, and server errors
 * logged with their stack and answered without details.
 */
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/** The error body every API answers with. */
export const ERROR_SCHEMA = { $id: 'error', type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } as const;

/** Response schemas for a route's error answers. */
export const ERROR_RESPONSES = { '4xx': { $ref: 'error#' }, '5xx': { $ref: 'error#' } } as const;

/** What the texts may say about an API's limits. */
export interface ErrorLimits {
  /** The body limit, bytes. */
  bodyBytes: number;
  /** The upload limit, bytes (multipart). */
  fileBytes?: number;
  /** The content types the API takes, for the 415 text. */
  contentTypes?: string;
}

/** Texts for the client errors Fastify raises before a handler runs, by error code. */
export const FASTIFY_ERROR_TEXTS: Record<string, (limits: ErrorLimits, err: FastifyError) => string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: (l) => `The request body is too large: larger than ${l.bodyBytes} bytes.`,
  FST_REQ_FILE_TOO_LARGE: (l) => `The photo is larger than ${l.fileBytes ?? l.bodyBytes} bytes.`,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (l) => `Unsupported content type: send ${l.contentTypes ?? 'the body as JSON (Content-Type: application/json)'}.`,
  FST_ERR_CTP_EMPTY_JSON_BODY: () => 'The request body is empty; send a JSON object.',
  FST_ERR_CTP_INVALID_JSON_BODY: () => 'The request body is not valid JSON.',
  FST_ERR_VALIDATION: (_l, err) => `Invalid request: ${err.message}.`,
};

/** The text of a client error (status 4xx). */
export function clientErrorText(err: FastifyError, limits: ErrorLimits): string {
  const text = err.code ? FASTIFY_ERROR_TEXTS[err.code] : undefined;
  if (text) return text(limits, err);
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) return 'The request body is not valid JSON.';
  return err.message;
}

/** An error a handler throws to answer with a status, a text and headers. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpProblem';
  }
}

/** How one API words what the table does not know. */
export interface ErrorPluginOptions {
  limits: ErrorLimits;
  /** The answer to a server error (5xx); the error itself goes to the log. */
  serverError: string;
  /** The 404 text. */
  notFound: (request: FastifyRequest) => string;
  /** Status of an unsupported content type [415]. */
  unsupportedMediaStatus?: number;
  /** Errors the API knows itself (a corrupt shared file ...); null for the rest. */
  known?: (err: FastifyError, request: FastifyRequest) => { status: number; text: string; headers?: Record<string, string> } | null;
  /** Log of server errors [request.log]. */
  log?: (request: FastifyRequest, err: unknown) => void;
  /** Answers in another form than JSON (the dashboard's HTML pages); return undefined for JSON. */
  render?: (request: FastifyRequest, reply: FastifyReply, status: number, text: string) => FastifyReply | undefined;
}

const errorPluginBody: FastifyPluginAsync<ErrorPluginOptions> = async (app: FastifyInstance, opts) => {
  app.addSchema(ERROR_SCHEMA);
  const answer = (request: FastifyRequest, reply: FastifyReply, status: number, text: string): FastifyReply => {
    void reply.code(status);
    return opts.render?.(request, reply, status, text) ?? reply.send({ error: text });
  };
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof HttpProblem) return answer(request, reply.headers(err.headers), err.status, err.message);
    const known = opts.known?.(err, request);
    if (known) return answer(request, reply.headers(known.headers ?? {}), known.status, known.text);
    const status = err.statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      const code = status === 415 ? (opts.unsupportedMediaStatus ?? 415) : status;
      return answer(request, reply, code, clientErrorText(err, opts.limits));
    }
    if (opts.log) opts.log(request, err);
    else request.log.error({ err, url: request.url }, 'request failed');
    return answer(request, reply, status !== undefined && status >= 500 && status < 600 ? status : 500, opts.serverError);
  });
  app.setNotFoundHandler((request, reply) => answer(request, reply, 404, opts.notFound(request)));
};

/** The error plugin; registered on the root instance, its handlers cover every route. */
export const errorPlugin = Object.assign(errorPluginBody, { [Symbol.for('skip-override')]: true });
