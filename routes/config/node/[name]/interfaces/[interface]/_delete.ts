import { deleteNodeInterface } from "../../../../../../lib/node-interfaces.ts";
import { checkNodeName } from "../../../../../../lib/nodes.ts";
import { checkInterfaceName } from "../../../../../../lib/node-interface-changes.ts";
import { handler, noContent } from "../../../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete one interface of a node with its address", responses: { 204: "deleted", 404: "no such node or interface" } },
  async ({ services, params }) => {
    checkNodeName(params.name);
    await deleteNodeInterface(services.db, params.name, checkInterfaceName(params.interface));
    return noContent();
  },
);
