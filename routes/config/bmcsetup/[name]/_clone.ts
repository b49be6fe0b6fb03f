import * as v from "valibot";
import { bmcSetupFieldEntries, cloneBmcSetup } from "../../../../lib/bmcsetups.ts";
import { bodyName, requireSameName } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { LOOSE_NAME, name } from "../../../../lib/fields.ts";
import { handler, message } from "../../../../lib/route.ts";

const CloneBody = configEnvelope(
  "bmcsetup",
  v.strictObject({ ...bmcSetupFieldEntries, name: bodyName, newbmcname: name("newbmcname", LOOSE_NAME) }),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Copy a BMC setup to newbmcname, with optional field changes",
    body: CloneBody,
    responses: { 201: "cloned", 400: "invalid value", 404: "unknown BMC setup", 409: "new name already exists" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, newbmcname, ...fields } = unwrapEnvelope(body, "bmcsetup", params.name);
    requireSameName(sentName, params.name, "newbmcname");
    await cloneBmcSetup(services.db, params.name, newbmcname, fields);
    return message(`BMC setup ${params.name} cloned as ${newbmcname}`, 201);
  },
);
