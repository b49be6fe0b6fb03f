import { handler, json } from "../lib/route.ts";
import { API_VERSION, DAEMON_VERSION } from "../lib/version.ts";

export const GET = handler({ auth: "none", summary: "Daemon and API version" }, () =>
  json({ version: { luna: DAEMON_VERSION, api: API_VERSION } }));
