import * as v from "valibot";
import { bodyName, requireSameName, wrapObjects } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { name, STRICT_NAME } from "../../../../lib/fields.ts";
import { handler, json, message, noContent } from "../../../../lib/route.ts";
import { getSwitch, saveSwitch, switchFieldEntries } from "../../../../lib/switches.ts";

const SwitchBody = configEnvelope(
  "switch",
  v.strictObject({ ...switchFieldEntries, name: bodyName, newswitchname: v.optional(name("newswitchname", STRICT_NAME)) }),
);

export const GET = handler(
  { auth: "admin", summary: "Show a switch with its address", responses: { 200: "switch", 404: "unknown switch" } },
  async ({ services, params }) => json(wrapObjects("switch", await getSwitch(services.db.orm, params.name))),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create a switch, or update or rename (newswitchname) an existing one; ipaddress and network set its address",
    body: SwitchBody,
    responses: { 201: "created", 204: "updated", 400: "invalid value or address outside the network", 409: "name, MAC or address already used" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, newswitchname, ...fields } = unwrapEnvelope(body, "switch", params.name);
    requireSameName(sentName, params.name, "newswitchname");
    const result = await saveSwitch(services.db, params.name, fields, services.clock.now(), newswitchname);
    return result === "created" ? message(`Switch ${params.name} created`, 201) : noContent();
  },
);
