import * as v from "valibot";
import {
  checkSecretPathNames,
  describeSave,
  getGroupSecrets,
  saveSecrets,
  secretContent,
  secretName,
  secretPath,
  unwrapSecretList,
} from "../../../../../lib/node-secrets.ts";
import { handler, json, message, noContent } from "../../../../../lib/route.ts";

const SecretEntry = v.strictObject({
  name: secretName(),
  content: v.optional(secretContent),
  path: v.optional(secretPath),
});

const SecretsBody = v.strictObject({
  config: v.strictObject({ secrets: v.strictObject({ group: v.record(v.string(), v.array(SecretEntry)) }) }),
});

export const GET = handler(
  { auth: "admin", summary: "List the secrets of a group", responses: { 200: "secrets", 404: "unknown group or no secrets" } },
  async ({ services, params }) => {
    checkSecretPathNames("group", params.group);
    return json({ config: { secrets: await getGroupSecrets(services.db.orm, services.secrets, params.group) } });
  },
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create or update several secrets of a group",
    body: SecretsBody,
    responses: { 201: "at least one secret created", 204: "secrets updated", 400: "invalid entry", 404: "unknown group" },
  },
  async ({ services, params, body }) => {
    checkSecretPathNames("group", params.group);
    const entries = unwrapSecretList(body.config.secrets.group, "group", params.group);
    const result = await saveSecrets(services.db, services.secrets, "group", params.group, entries);
    return result.created.length > 0 ? message(describeSave("group", params.group, result), 201) : noContent();
  },
);
