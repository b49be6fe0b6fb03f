import { listJournal } from "../../../lib/journal.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler({ auth: "admin", summary: "Pending journal tasks of one controller, in the order they run" }, async ({ services, params }) =>
  json({ journal: await listJournal(services.db, params.controller) }));
