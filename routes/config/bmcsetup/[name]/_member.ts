import { listBmcSetupMembers } from "../../../../lib/bmcsetups.ts";
import { wrapObjects } from "../../../../lib/config-object.ts";
import { handler, json } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List the nodes that use a BMC setup directly or through their group", responses: { 200: "members", 404: "unknown BMC setup" } },
  async ({ services, params }) => {
    const members = await listBmcSetupMembers(services.db.orm, params.name);
    return json(wrapObjects("bmcsetup", { [params.name]: { members } }));
  },
);
