import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { DomainError, methodNotAllowed, statusFor } from "./errors.ts";
import { describeError, logger } from "./log.ts";
import type { RouteHandler } from "./route.ts";
import { manifest, type RouteEntry } from "./routes.gen.ts";
import { createServices, type ServiceOptions, type Services } from "./services.ts";
import { notifyConfigurationChange } from "./config-changes.ts";

/** HTTP methods a route file may export, in the order they are registered. */
export const HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

type AppEnv = { Variables: { route: string; callerKind: string } };

const httpLog = logger("http");

/** Returns the handlers a route module exports, keyed by method. */
export function methodsOf(entry: RouteEntry): Partial<Record<HttpMethod, RouteHandler>> {
  const methods: Partial<Record<HttpMethod, RouteHandler>> = {};
  for (const method of HTTP_METHODS) {
    const exported = (entry.module as Record<string, unknown>)[method];
    if (exported) methods[method] = exported as RouteHandler;
  }
  return methods;
}

/**
 * Builds the daemon's HTTP app from the route manifest. Config, database and hardware adapter
 * are arguments, so tests build the app in-process and call `app.request()`.
 */
export function createApp(options: ServiceOptions): { app: Hono<AppEnv>; services: Services } {
  const services = createServices(options);
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    notifyConfigurationChange(services, c.req.method, c.get("route"), c.res.status);
    httpLog.info("{method} {route} {status}", {
      method: c.req.method,
      route: c.get("route") ?? "(no route)",
      status: c.res.status,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      caller: c.get("callerKind") ?? "anonymous",
    });
  });

  // The manifest lists static segments before parameters, so registering in its order makes
  // `/config/network/{name}/_nextfreeip` win over `/config/network/{name}/{ipaddr}`.
  for (const entry of manifest) {
    const methods = methodsOf(entry);
    const allowed = Object.keys(methods).join(", ");
    for (const [method, routeHandler] of Object.entries(methods)) {
      app.on(method, entry.honoPath, (c) => {
        c.set("route", entry.path);
        return routeHandler.handle(c, services);
      });
    }
    app.all(entry.honoPath, (c) => {
      c.set("route", entry.path);
      if (c.req.method === "HEAD" && methods.GET) return methods.GET.handle(c, services);
      throw methodNotAllowed(`Method ${c.req.method} is not allowed on ${entry.path}: use ${allowed}`);
    });
  }

  app.notFound((c) => c.json({ message: `No route for ${c.req.method} ${c.req.path}` }, 404));

  app.onError((error, c) => {
    if (error instanceof DomainError) {
      if (error.kind === "unauthorized" || error.kind === "forbidden") {
        httpLog.warning("Denied {method} {route}: {reason}", {
          method: c.req.method,
          route: c.get("route"),
          reason: error.message,
        });
      }
      if (error.kind === "unavailable") {
        httpLog.error("Backend unavailable for {method} {route}: {reason}", {
          method: c.req.method,
          route: c.get("route"),
          reason: error.message,
        });
      }
      return c.json({ message: error.message }, statusFor(error) as ContentfulStatusCode);
    }
    httpLog.error("Unhandled error in {method} {route}: {error}", {
      method: c.req.method,
      route: c.get("route"),
      error: describeError(error),
    });
    return c.json({ message: "Internal server error: see the daemon log" }, 500);
  });

  return { app, services };
}
