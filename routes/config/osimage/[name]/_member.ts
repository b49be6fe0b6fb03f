import { wrapObjects } from "../../../../lib/config-object.ts";
import { listOsimageMembers } from "../../../../lib/osimages.ts";
import { handler, json } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List the nodes that use an OS image directly or through their group", responses: { 200: "members", 404: "unknown OS image" } },
  async ({ services, params }) => {
    const members = await listOsimageMembers(services.db.orm, params.name);
    return json(wrapObjects("osimage", { [params.name]: { members } }));
  },
);
