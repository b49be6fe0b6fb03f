import * as v from "valibot";
import { bodyName, requireSameName } from "../../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../../lib/envelope.ts";
import { getGroupInterfacesView, GroupInterfaceEntry, saveGroupInterfaces } from "../../../../../lib/group-interfaces.ts";
import { handler, json, message, noContent } from "../../../../../lib/route.ts";

const InterfacesBody = configEnvelope("group", v.strictObject({ name: bodyName, interfaces: v.array(GroupInterfaceEntry) }));

export const GET = handler(
  { auth: "admin", summary: "List the interfaces of a group", responses: { 200: "interfaces, possibly none", 404: "unknown group" } },
  async ({ services, params }) => json(await getGroupInterfacesView(services.db.orm, params.name)),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create, update or rename (newinterfacename) group interfaces and apply them to every member node",
    body: InterfacesBody,
    responses: {
      201: "an interface was created",
      204: "interfaces updated",
      400: "invalid value or network missing",
      404: "unknown group or interface to rename",
      409: "name clash or network full",
    },
  },
  async ({ services, params, body }) => {
    const { name: sentName, interfaces } = unwrapEnvelope(body, "group", params.name);
    requireSameName(sentName, params.name, "newgroupname");
    const changes = await saveGroupInterfaces(services.db, params.name, interfaces, services.clock.now());
    if (changes.created.length === 0) return noContent();
    return message(`Interface ${changes.created.join(", ")} created in group ${params.name}`, 201);
  },
);
