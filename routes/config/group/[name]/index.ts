import * as v from "valibot";
import { bodyName, requireSameName } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { LOOSE_NAME, name } from "../../../../lib/fields.ts";
import { getGroupView } from "../../../../lib/group-view.ts";
import { groupFieldEntries, saveGroup } from "../../../../lib/groups.ts";
import { handler, json, message, noContent } from "../../../../lib/route.ts";

const GroupBody = configEnvelope(
  "group",
  v.strictObject({ ...groupFieldEntries, name: bodyName, newgroupname: v.optional(name("newgroupname", LOOSE_NAME)) }),
);

export const GET = handler(
  {
    auth: "admin",
    summary: "Show a group with resolved settings, _<key>_source markers and _override",
    responses: { 200: "group", 400: "invalid group name", 404: "unknown group" },
  },
  async ({ services, params }) => json(await getGroupView(services.db.orm, params.name)),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create a group, or update or rename (newgroupname) an existing one; interface changes reach every member node",
    body: GroupBody,
    responses: { 201: "created", 204: "updated", 400: "invalid value", 404: "unknown interface to rename", 409: "name already exists or network full" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, newgroupname, ...fields } = unwrapEnvelope(body, "group", params.name);
    requireSameName(sentName, params.name, "newgroupname");
    const result = await saveGroup(services.db, params.name, fields, newgroupname, services.clock.now());
    if (result.outcome === "updated") return noContent();
    const created = result.interfaces.created.length > 0 ? ` with interfaces ${result.interfaces.created.join(", ")}` : "";
    return message(`Group ${params.name} created${created}`, 201);
  },
);
