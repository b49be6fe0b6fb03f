import { listStatusMessages } from "../../../lib/monitor-jobs.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler({ auth: "admin", summary: "Recent job status lines, newest first, as luna2-cli's monitor status shows them" }, async ({ services }) =>
  json({ monitor: { status: await listStatusMessages(services.db) } }));
