import * as v from "valibot";
import { bodyName, requireSameName } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { LOOSE_NAME, name } from "../../../../lib/fields.ts";
import { cloneGroup, groupFieldEntries } from "../../../../lib/groups.ts";
import { handler, message } from "../../../../lib/route.ts";

const CloneBody = configEnvelope(
  "group",
  v.strictObject({ ...groupFieldEntries, name: bodyName, newgroupname: name("newgroupname", LOOSE_NAME) }),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Copy a group with its interfaces and secrets to newgroupname, with optional field changes",
    body: CloneBody,
    responses: { 201: "cloned", 400: "invalid value or newgroupname missing", 404: "unknown group", 409: "new name already exists" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, newgroupname, ...fields } = unwrapEnvelope(body, "group", params.name);
    requireSameName(sentName, params.name, "newgroupname");
    await cloneGroup(services.db, params.name, newgroupname, fields, services.clock.now());
    return message(`Group ${params.name} cloned as ${newgroupname}`, 201);
  },
);
