import * as v from "valibot";
import {
  checkSecretPathNames,
  getSecret,
  saveSecret,
  secretContent,
  secretName,
  secretPath,
  unwrapSingleSecret,
} from "../../../../../../lib/node-secrets.ts";
import { handler, json, noContent } from "../../../../../../lib/route.ts";

const SecretEntry = v.strictObject({
  name: v.optional(secretName()),
  content: v.optional(secretContent),
  path: v.optional(secretPath),
});

const SecretBody = v.strictObject({
  config: v.strictObject({ secrets: v.strictObject({ group: v.record(v.string(), v.array(SecretEntry)) }) }),
});

// LUNA2-COMPAT: the specification returns 405 here, but `luna secrets show group <g> <secret>`
// reads one group secret with this GET, as the original daemon allows, so it is served.
export const GET = handler(
  { auth: "admin", summary: "Show one secret of a group", responses: { 200: "secret", 404: "unknown group or secret" } },
  async ({ services, params }) => {
    checkSecretPathNames("group", params.group, params.secret);
    return json({ config: { secrets: await getSecret(services.db.orm, services.secrets, "group", params.group, params.secret) } });
  },
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Update one existing secret of a group",
    body: SecretBody,
    responses: { 204: "secret updated", 400: "invalid entry", 404: "unknown group or secret" },
  },
  async ({ services, params, body }) => {
    checkSecretPathNames("group", params.group, params.secret);
    const entry = unwrapSingleSecret(body.config.secrets.group, "group", params.group, params.secret);
    await saveSecret(services.db, services.secrets, "group", params.group, { ...entry, name: params.secret }, { create: false });
    return noContent();
  },
);
