import { toJsonSchema } from "@valibot/to-json-schema";
import { HTTP_METHODS, methodsOf } from "./app.ts";
import { TOKEN_HEADER } from "./auth.ts";
import { manifest } from "./routes.gen.ts";
import { DAEMON_VERSION } from "./version.ts";

/** One method of one route, as GET /all-routes lists it. */
export interface RouteListing {
  route: string;
  method: string;
  auth: string;
  summary: string;
}

function describeAuth(auth: unknown): string {
  if (auth === "none") return "none";
  if (auth === "admin") return "admin token";
  return "admin token or the node's provision token";
}

/** Lists every route and method from the route manifest. */
export function listRoutes(): RouteListing[] {
  const listing: RouteListing[] = [];
  for (const entry of manifest) {
    for (const [method, routeHandler] of Object.entries(methodsOf(entry))) {
      listing.push({ route: entry.path, method, auth: describeAuth(routeHandler.options.auth), summary: routeHandler.options.summary });
    }
  }
  return listing;
}

/** Builds an OpenAPI 3.1 document from the route manifest and the handlers' valibot schemas. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const entry of manifest) {
    const operations: Record<string, unknown> = {};
    const parameters = [...entry.path.matchAll(/\{([a-z_0-9]+)\}/g)].map((match) => ({
      name: match[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    const methods = methodsOf(entry);
    for (const method of HTTP_METHODS) {
      const routeHandler = methods[method];
      if (!routeHandler) continue;
      const { options } = routeHandler;
      const responses: Record<string, { description: string }> = {};
      for (const [status, description] of Object.entries(options.responses ?? { 200: "success" })) {
        responses[status] = { description };
      }
      operations[method.toLowerCase()] = {
        summary: options.summary,
        parameters,
        security: options.auth === "none" ? [] : [{ token: [] }],
        ...(options.body
          ? { requestBody: { required: true, content: { "application/json": { schema: toJsonSchema(options.body, { errorMode: "ignore" }) } } } }
          : {}),
        responses,
      };
    }
    paths[entry.path] = operations;
  }
  return {
    openapi: "3.1.0",
    info: { title: "Luna2 daemon API", version: DAEMON_VERSION },
    components: { securitySchemes: { token: { type: "apiKey", in: "header", name: TOKEN_HEADER } } },
    paths,
  };
}

/** Rows of the human-readable API page, built from the OpenAPI document. */
export function apiPageRows(): { method: string; path: string; auth: string; summary: string; responses: string }[] {
  const document = openApiDocument() as { paths: Record<string, Record<string, { summary: string; security: unknown[]; responses: Record<string, { description: string }> }>> };
  const rows = [];
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      rows.push({
        method: method.toUpperCase(),
        path,
        auth: operation.security.length === 0 ? "none" : "token",
        summary: operation.summary,
        responses: Object.entries(operation.responses).map(([status, response]) => `${status} ${response.description}`).join(", "),
      });
    }
  }
  return rows;
}
