import { listNetworks } from "../../../lib/network-views.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler({ auth: "admin", summary: "List networks", responses: { 200: "networks", 404: "no networks" } }, async ({ services }) =>
  json(await listNetworks(services.db.orm)));
