import * as v from "valibot";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { checkOsAccountName, getOsAccount, osAccountNames, osIdNumber, saveOsGroup } from "../../../../lib/os-accounts.ts";
import { handler, json, message, noContent } from "../../../../lib/route.ts";

const GroupFields = v.strictObject({
  gidNumber: v.optional(osIdNumber),
  member: v.optional(osAccountNames("member")),
});

// The specification lists no GET here; the original daemon serves it and the TrinityX Open
// OnDemand account pages read one account with it.
export const GET = handler(
  { auth: "admin", summary: "Show one OS group through obol", responses: { 200: "group", 404: "unknown group", 503: "obol failed or is missing" } },
  async ({ services, params }) => {
    checkOsAccountName("group", params.name);
    return json({ config: { osgroup: { [params.name]: await getOsAccount(services, "group", params.name) } } });
  },
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create or change an OS group through obol",
    body: configEnvelope("osgroup", GroupFields),
    responses: { 201: "group created", 204: "group changed", 400: "invalid value or rejected by obol", 503: "obol failed or is missing" },
  },
  async ({ services, params, body }) => {
    checkOsAccountName("group", params.name);
    const changes = unwrapEnvelope(body, "osgroup", params.name);
    const outcome = await saveOsGroup(services, params.name, changes);
    return outcome === "created" ? message(`Created OS group "${params.name}"`, 201) : noContent();
  },
);
