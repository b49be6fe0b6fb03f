import * as v from "valibot";
import { bodyName, requireSameName, wrapObjects } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { name, STRICT_NAME } from "../../../../lib/fields.ts";
import { getOtherDevice, otherDeviceFieldEntries, saveOtherDevice } from "../../../../lib/other-devices.ts";
import { handler, json, message, noContent } from "../../../../lib/route.ts";

const OtherDeviceBody = configEnvelope(
  "otherdev",
  v.strictObject({ ...otherDeviceFieldEntries, name: bodyName, newotherdevname: v.optional(name("newotherdevname", STRICT_NAME)) }),
);

export const GET = handler(
  { auth: "admin", summary: "Show another device with its address", responses: { 200: "other device", 404: "unknown device" } },
  async ({ services, params }) => json(wrapObjects("otherdev", await getOtherDevice(services.db.orm, params.name))),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create another device, or update or rename (newotherdevname) an existing one; ipaddress and network set its address",
    body: OtherDeviceBody,
    responses: { 201: "created", 204: "updated", 400: "invalid value or address outside the network", 409: "name, MAC or address already used" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, newotherdevname, ...fields } = unwrapEnvelope(body, "otherdev", params.name);
    requireSameName(sentName, params.name, "newotherdevname");
    const result = await saveOtherDevice(services.db, params.name, fields, services.clock.now(), newotherdevname);
    return result === "created" ? message(`Device ${params.name} created`, 201) : noContent();
  },
);
