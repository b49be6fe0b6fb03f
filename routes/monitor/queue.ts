import { listQueue } from "../../lib/monitor-jobs.ts";
import { handler, json } from "../../lib/route.ts";

export const GET = handler({ auth: "admin", summary: "Jobs queued or running, as luna2-cli's monitor queue shows them" }, async ({ services }) =>
  json({ monitor: { queue: await listQueue(services.db) } }));
