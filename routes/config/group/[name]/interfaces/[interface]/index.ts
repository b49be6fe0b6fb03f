import { getGroupInterfaceView } from "../../../../../../lib/group-interfaces.ts";
import { handler, json } from "../../../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Show one interface of a group", responses: { 200: "interface", 404: "unknown group or interface" } },
  async ({ services, params }) => json(await getGroupInterfaceView(services.db.orm, params.name, params.interface)),
);
