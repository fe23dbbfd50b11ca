/**
 * Request bodies checked at the edge, the Fastify way: a route declares `schema: { body }`
 * with a zod schema (one source of truth for the body's type and its check), and this
 * validator compiler runs it before the handler, which gets the parsed body. A refused body
 * answers 400 through the error plugin (shared/httpErrors.ts) with the schema's usage text
 * (withUsage) or, without one, in the API's own words (the dashboard: its first problem as
 * a sentence; the send and dispatch APIs: every problem, shared/contract.ts).
 */
import type { FastifySchemaCompiler, FastifyServerOptions } from 'fastify';
import type { z } from 'zod';
import { HttpProblem } from './httpErrors.js';

type SchemaControllerOptions = NonNullable<FastifyServerOptions['schemaController']>;
type CompilersFactory = NonNullable<SchemaControllerOptions['compilersFactory']>;

const usages = new WeakMap<z.ZodType, string>();

/** `schema`, refused with one text whatever its problem (how to write the body). */
export function withUsage<T extends z.ZodType>(schema: T, usage: string): T {
  usages.set(schema, usage);
  return schema;
}

/**
 * The first problem of a zod error, as a sentence. A message written as a sentence (capital
 * first) is answered as it is; any other is prefixed with its field unless it names it
 * (`Duration: is required.`).
 */
export function firstProblem(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return 'The request is not valid.';
  if (issue.code === 'unrecognized_keys') return `Unknown field ${issue.keys.map((k) => `'${k}'`).join(', ')}.`;
  if (/^[A-Z]/.test(issue.message)) return issue.message;
  const where = issue.path.join('.');
  const text = where === '' || issue.message.startsWith(`${where}:`) ? issue.message : `${where}: ${issue.message}`;
  const sentence = `${text.charAt(0).toUpperCase()}${text.slice(1)}`;
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}

/** How an API words a refused body, from zod's error and the body as checked. */
export type DescribeRefusal = (err: z.ZodError, input: unknown) => string;

/**
 * A validator compiler for zod route schemas that words a refused body with `describe`
 * (unless the schema has its usage text); an absent body is checked as `{}`.
 */
export function zodValidator(describe: DescribeRefusal): FastifySchemaCompiler<z.ZodType> {
  return ({ schema, method, url }) => {
    if (typeof (schema as Partial<z.ZodType>).safeParse !== 'function') throw new Error(`${method} ${url}: route schemas are zod schemas`);
    return (data: unknown) => {
      const input = data ?? {};
      const r = schema.safeParse(input);
      return r.success ? { value: r.data } : { error: new HttpProblem(400, usages.get(schema) ?? describe(r.error, input)) };
    };
  };
}

/** The dashboard's validator compiler: a refused body answers its first problem as a sentence. */
export const zodValidatorCompiler = zodValidator((err) => firstProblem(err));

/**
 * Fastify's `schemaController` option for our servers: route bodies are zod schemas, checked
 * by `validator`, so Fastify's own validator, ajv, is never loaded (about 0.7 MB of heap
 * with fast-json-stringify). `responses: false` is for a server whose routes declare no
 * response schema (the send API, the gateway's dispatch API): fast-json-stringify, Fastify's
 * response serializer, is left out too, and a route that declares one fails at start-up.
 */
export function zodSchemaController(validator: FastifySchemaCompiler<z.ZodType>, opts: { responses: boolean }): SchemaControllerOptions {
  return {
    compilersFactory: {
      // Fastify's types describe ajv's factory; it calls ours the same way, for a compiler.
      buildValidator: (() => validator) as unknown as CompilersFactory['buildValidator'],
      ...(opts.responses
        ? {}
        : {
            buildSerializer: () => {
              throw new Error('this server serializes no response schemas (zodSchemaController with responses: false)');
            },
          }),
    },
  };
}
