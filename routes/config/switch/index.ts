import { wrapObjects } from "../../../lib/config-object.ts";
import { handler, json } from "../../../lib/route.ts";
import { listSwitches } from "../../../lib/switches.ts";

export const GET = handler(
  { auth: "admin", summary: "List switches with their addresses", responses: { 200: "switches", 404: "no switch exists" } },
  async ({ services }) => json(wrapObjects("switch", await listSwitches(services.db.orm))),
);
