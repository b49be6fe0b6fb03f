import * as v from "valibot";
import { bmcSetupFieldEntries, getBmcSetup, saveBmcSetup } from "../../../../lib/bmcsetups.ts";
import { bodyName, requireSameName, wrapObjects } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { LOOSE_NAME, name } from "../../../../lib/fields.ts";
import { handler, json, message, noContent } from "../../../../lib/route.ts";

const BmcSetupBody = configEnvelope(
  "bmcsetup",
  v.strictObject({ ...bmcSetupFieldEntries, name: bodyName, newbmcname: v.optional(name("newbmcname", LOOSE_NAME)) }),
);

export const GET = handler(
  { auth: "admin", summary: "Show a BMC setup with its password", responses: { 200: "BMC setup", 404: "unknown BMC setup" } },
  async ({ services, params }) => json(wrapObjects("bmcsetup", await getBmcSetup(services.db.orm, params.name))),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create a BMC setup, or update or rename (newbmcname) an existing one",
    body: BmcSetupBody,
    responses: { 201: "created", 204: "updated", 400: "invalid value", 409: "new name already exists" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, newbmcname, ...fields } = unwrapEnvelope(body, "bmcsetup", params.name);
    requireSameName(sentName, params.name, "newbmcname");
    const result = await saveBmcSetup(services.db, params.name, fields, newbmcname);
    return result === "created" ? message(`BMC setup ${params.name} created`, 201) : noContent();
  },
);
