import { wrapObjects } from "../../../../lib/config-object.ts";
import { listGroupMembers } from "../../../../lib/group-view.ts";
import { handler, json } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List the nodes of a group", responses: { 200: "member names, possibly none", 404: "unknown group" } },
  async ({ services, params }) => {
    const members = await listGroupMembers(services.db.orm, params.name);
    return json(wrapObjects("group", { [params.name]: { members } }));
  },
);
