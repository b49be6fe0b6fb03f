import { getGroupListView } from "../../../lib/group-view.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List groups with their resolved settings and interfaces", responses: { 200: "groups, possibly none" } },
  async ({ services }) => json(await getGroupListView(services.db.orm)),
);
