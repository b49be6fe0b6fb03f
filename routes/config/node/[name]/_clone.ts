import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { checkNodeName, cloneNode, NodeFields } from "../../../../lib/nodes.ts";
import { handler, message } from "../../../../lib/route.ts";

const CloneBody = configEnvelope("node", NodeFields);

export const POST = handler(
  {
    auth: "admin",
    summary: "Clone a node into newnodename with new addresses, no MAC addresses and copied secrets",
    body: CloneBody,
    responses: { 201: "cloned", 400: "invalid value", 404: "no such node", 409: "name in use" },
  },
  async ({ services, params, body }) => {
    checkNodeName(params.name);
    const fields = unwrapEnvelope(body, "node", params.name);
    const created = await cloneNode(services.db, params.name, fields, services.clock.now());
    return message(`Node ${created} created successfully`, 201);
  },
);
