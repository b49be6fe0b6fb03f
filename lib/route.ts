import type { Context } from "hono";
import * as v from "valibot";
import { type Caller, requireAdmin, requireAdminOrNode, TOKEN_HEADER } from "./auth.ts";
import { invalid } from "./errors.ts";
import type { Services } from "./services.ts";

/**
 * Access rule of a handler: anyone, an admin token, or an admin token or the provision token of
 * the node named by the given path parameter.
 */
export type AuthRule = "none" | "admin" | { node: string };

/** Input of a handler: the parsed request and the shared services. */
export interface RequestContext<Body> {
  c: Context;
  services: Services;
  params: Record<string, string>;
  caller: Caller;
  body: Body;
}

/** Options of one method handler; `body` is the valibot schema of its JSON body. */
export interface HandlerOptions<Schema extends v.GenericSchema | undefined> {
  auth: AuthRule;
  summary: string;
  body?: Schema;
  /** Status codes this handler returns, for the API description. */
  responses?: Record<number, string>;
}

type BodyOf<Schema> = Schema extends v.GenericSchema ? v.InferOutput<Schema> : undefined;

/** One HTTP method of one route file. */
export interface RouteHandler {
  readonly options: HandlerOptions<v.GenericSchema | undefined>;
  handle(c: Context, services: Services): Promise<Response>;
}

/** Defines a method handler: checks auth, parses the body with `options.body`, then calls `fn`. */
export function handler<Schema extends v.GenericSchema | undefined = undefined>(
  options: HandlerOptions<Schema>,
  fn: (request: RequestContext<BodyOf<Schema>>) => Promise<Response> | Response,
): RouteHandler {
  return {
    options: options as HandlerOptions<v.GenericSchema | undefined>,
    async handle(c, services) {
      const params = c.req.param() as Record<string, string>;
      const caller = await authenticate(c, services, options.auth, params);
      c.set("callerKind", caller.kind);
      const body = options.body ? await parseBody(c, options.body) : undefined;
      return fn({ c, services, params, caller, body: body as BodyOf<Schema> });
    },
  };
}

async function authenticate(c: Context, services: Services, rule: AuthRule, params: Record<string, string>): Promise<Caller> {
  const token = c.req.header(TOKEN_HEADER);
  if (rule === "none") {
    if (!token) return { kind: "anonymous" };
    return services.tokens.verify(token).catch((): Caller => ({ kind: "anonymous" }));
  }
  const caller = await services.tokens.verify(token);
  if (rule === "admin") requireAdmin(caller);
  else requireAdminOrNode(caller, params[rule.node]);
  return caller;
}

/** Reads the request body as JSON and validates it; every failure is a 400 naming the key. */
export async function parseBody<Schema extends v.GenericSchema>(c: Context, schema: Schema): Promise<v.InferOutput<Schema>> {
  const text = await c.req.text();
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw invalid(`Request body is not valid JSON: ${(error as Error).message}`);
  }
  const result = v.safeParse(schema, data);
  if (!result.success) throw invalid(describeIssue(result.issues[0]));
  return result.output;
}

/** Returns the sub-issue with the deepest path, so a union names the field that failed, not the union. */
function deepestIssue(issue: v.BaseIssue<unknown>): v.BaseIssue<unknown> {
  let best = issue;
  for (const nested of issue.issues ?? []) {
    const candidate = deepestIssue(nested);
    if ((candidate.path?.length ?? 0) > (best.path?.length ?? 0)) best = candidate;
  }
  return best;
}

/** Turns the first valibot issue into a message naming the key and the problem. */
export function describeIssue(first: v.BaseIssue<unknown>): string {
  const issue = deepestIssue(first);
  const path = v.getDotPath(issue);
  if (issue.type === "strict_object" && issue.expected === "never" && path) {
    return `Invalid request: unknown key "${path}"`;
  }
  if (issue.received === "undefined" && path) {
    return `Invalid request: missing key "${path}"`;
  }
  const where = path ? `"${path}"` : "the request body";
  return `Invalid request: invalid value for ${where}: ${issue.message}`;
}

/** Builds a JSON response with `status`. */
export function json(data: unknown, status = 200): Response {
  return new Response(JSON.stringify(data), { status, headers: { "content-type": "application/json" } });
}

/** Builds a `{"message": ...}` response, the shape luna2-cli unwraps. */
export function message(text: string, status = 200): Response {
  return json({ message: text }, status);
}

/** Builds an empty 204 response. */
export function noContent(): Response {
  return new Response(null, { status: 204 });
}
