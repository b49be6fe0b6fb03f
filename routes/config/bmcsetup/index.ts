import { listBmcSetups } from "../../../lib/bmcsetups.ts";
import { wrapObjects } from "../../../lib/config-object.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List BMC setups with their credentials", responses: { 200: "BMC setups", 404: "no BMC setup exists" } },
  async ({ services }) => json(wrapObjects("bmcsetup", await listBmcSetups(services.db.orm))),
);
