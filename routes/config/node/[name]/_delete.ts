import { checkNodeName, deleteNode } from "../../../../lib/nodes.ts";
import { handler, noContent } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete a node with its interfaces, addresses, secrets and status", responses: { 204: "deleted", 404: "no such node" } },
  async ({ services, params }) => {
    checkNodeName(params.name);
    await deleteNode(services.db, params.name);
    return noContent();
  },
);
