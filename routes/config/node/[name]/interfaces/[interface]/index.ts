import { getNodeInterface } from "../../../../../../lib/node-interfaces.ts";
import { checkNodeName } from "../../../../../../lib/nodes.ts";
import { checkInterfaceName } from "../../../../../../lib/node-interface-changes.ts";
import { handler, json } from "../../../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Show one interface of a node", responses: { 200: "interface", 404: "no such node or interface" } },
  async ({ services, params }) => {
    checkNodeName(params.name);
    return json(await getNodeInterface(services.db.orm, params.name, checkInterfaceName(params.interface)));
  },
);
