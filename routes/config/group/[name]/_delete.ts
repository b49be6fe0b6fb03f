import { deleteGroup } from "../../../../lib/groups.ts";
import { handler, noContent } from "../../../../lib/route.ts";

export const GET = handler(
  {
    auth: "admin",
    summary: "Delete a group without member nodes, with its interfaces and secrets",
    responses: { 204: "deleted", 404: "unknown group", 409: "nodes still belong to the group" },
  },
  async ({ services, params }) => {
    await deleteGroup(services.db, params.name);
    return noContent();
  },
);
