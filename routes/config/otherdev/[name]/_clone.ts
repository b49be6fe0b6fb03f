import * as v from "valibot";
import { bodyName, requireSameName } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { name, STRICT_NAME } from "../../../../lib/fields.ts";
import { cloneOtherDevice, otherDeviceFieldEntries } from "../../../../lib/other-devices.ts";
import { handler, message } from "../../../../lib/route.ts";

const CloneBody = configEnvelope(
  "otherdev",
  v.strictObject({ ...otherDeviceFieldEntries, name: bodyName, newotherdevname: name("newotherdevname", STRICT_NAME) }),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Copy another device to newotherdevname with the next free address in its network",
    body: CloneBody,
    responses: { 201: "cloned", 400: "invalid value", 404: "unknown device", 409: "name, MAC or address already used" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, newotherdevname, ...fields } = unwrapEnvelope(body, "otherdev", params.name);
    requireSameName(sentName, params.name, "newotherdevname");
    await cloneOtherDevice(services.db, params.name, newotherdevname, fields, services.clock.now());
    return message(`Device ${params.name} cloned as ${newotherdevname}`, 201);
  },
);
