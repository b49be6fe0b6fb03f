import * as v from "valibot";
import { invalid } from "../../../../../lib/errors.ts";
import { InterfaceEntry, updateNodeInterfaces } from "../../../../../lib/node-interface-changes.ts";
import { listNodeInterfaces } from "../../../../../lib/node-interfaces.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../../lib/envelope.ts";
import { checkNodeName } from "../../../../../lib/nodes.ts";
import { handler, json, noContent } from "../../../../../lib/route.ts";

const InterfacesBody = configEnvelope("node", v.strictObject({ name: v.optional(v.string()), interfaces: v.array(InterfaceEntry) }));


export const GET = handler(
  { auth: "admin", summary: "List the interfaces of a node that have a network", responses: { 200: "interfaces", 404: "no such node or no interfaces" } },
  async ({ services, params }) => json(await listNodeInterfaces(services.db.orm, checkNodeName(params.name))),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create, update or rename interfaces of a node",
    body: InterfacesBody,
    responses: { 204: "updated", 400: "invalid value", 404: "no such node", 409: "MAC or address in use" },
  },
  async ({ services, params, body }) => {
    const nodeName = checkNodeName(params.name);
    const fields = unwrapEnvelope(body, "node", nodeName);
    if (fields.name !== undefined && fields.name !== nodeName) {
      throw invalid(`Invalid request: name "${fields.name}" differs from the node in the URL "${nodeName}"`);
    }
    await updateNodeInterfaces(services.db, nodeName, fields.interfaces, services.clock.now());
    return noContent();
  },
);
