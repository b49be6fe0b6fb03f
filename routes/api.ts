import { TOKEN_HEADER } from "../lib/auth.ts";
import { apiPageRows } from "../lib/api-description.ts";
import { handler } from "../lib/route.ts";
import { DAEMON_VERSION } from "../lib/version.ts";

export const GET = handler({ auth: "none", summary: "Human-readable API reference" }, ({ services }) =>
  new Response(services.templates.renderHtml("api.html", { version: DAEMON_VERSION, tokenHeader: TOKEN_HEADER, rows: apiPageRows() }), {
    headers: { "content-type": "text/html; charset=utf-8" },
  }));
