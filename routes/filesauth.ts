import { requiresToken } from "../lib/files-auth.ts";
import { handler, message } from "../lib/route.ts";
import { unauthorized } from "../lib/errors.ts";
import { TOKEN_HEADER } from "../lib/auth.ts";

export const GET = handler(
  { auth: "none", summary: "nginx auth_request check for X-Original-URI", responses: { 200: "allowed", 401: "token missing or invalid" } },
  async ({ c, services }) => {
    const uri = c.req.header("x-original-uri");
    if (!uri) throw unauthorized("Missing request uri");
    if (requiresToken(uri)) await services.tokens.verify(c.req.header(TOKEN_HEADER));
    return message("Go");
  },
);
