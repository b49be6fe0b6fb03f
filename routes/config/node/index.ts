import { handler, json } from "../../../lib/route.ts";
import { listNodes } from "../../../lib/node-view.ts";

export const GET = handler({ auth: "admin", summary: "List all nodes with inherited values resolved" }, async ({ services }) =>
  json(await listNodes(services.db.orm)));
