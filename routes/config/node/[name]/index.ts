import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { getNodeView } from "../../../../lib/node-view.ts";
import { checkNodeName, NodeFields, saveNode } from "../../../../lib/nodes.ts";
import { handler, json, message, noContent } from "../../../../lib/route.ts";

const NodeBody = configEnvelope("node", NodeFields);


export const GET = handler(
  { auth: "admin", summary: "Show a node with inherited values and their _<field>_source markers", responses: { 200: "node", 404: "no such node" } },
  async ({ services, params }) => json(await getNodeView(services.db.orm, checkNodeName(params.name))),
);

export const POST = handler(
  {
    auth: { node: "name" },
    summary: "Create a node (needs group), update it, or rename it with newnodename",
    body: NodeBody,
    responses: { 201: "created", 204: "updated or renamed", 400: "invalid value", 404: "no such node", 409: "name, MAC or address in use" },
  },
  async ({ services, params, body, caller }) => {
    const nodeName = checkNodeName(params.name);
    const fields = unwrapEnvelope(body, "node", nodeName);
    const writer = caller.kind === "provision" ? "provision" : "admin";
    const outcome = await saveNode(services.db, nodeName, fields, services.clock.now(), writer);
    return outcome === "created" ? message(`Node ${nodeName} created successfully`, 201) : noContent();
  },
);
