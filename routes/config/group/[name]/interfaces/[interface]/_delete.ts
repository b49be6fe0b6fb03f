import { deleteGroupInterface } from "../../../../../../lib/group-interfaces.ts";
import { handler, noContent } from "../../../../../../lib/route.ts";

export const GET = handler(
  {
    auth: "admin",
    summary: "Delete a group interface and the same-named interface of every member node",
    responses: { 204: "deleted", 404: "unknown group or interface" },
  },
  async ({ services, params }) => {
    await deleteGroupInterface(services.db, params.name, params.interface);
    return noContent();
  },
);
