import * as v from "valibot";
import { bodyName, requireSameName } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { name, STRICT_NAME } from "../../../../lib/fields.ts";
import { handler, message } from "../../../../lib/route.ts";
import { cloneSwitch, switchFieldEntries } from "../../../../lib/switches.ts";

const CloneBody = configEnvelope(
  "switch",
  v.strictObject({ ...switchFieldEntries, name: bodyName, newswitchname: name("newswitchname", STRICT_NAME) }),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Copy a switch to newswitchname with the next free address in its network",
    body: CloneBody,
    responses: { 201: "cloned", 400: "invalid value", 404: "unknown switch", 409: "name, MAC or address already used" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, newswitchname, ...fields } = unwrapEnvelope(body, "switch", params.name);
    requireSameName(sentName, params.name, "newswitchname");
    await cloneSwitch(services.db, params.name, newswitchname, fields, services.clock.now());
    return message(`Switch ${params.name} cloned as ${newswitchname}`, 201);
  },
);
