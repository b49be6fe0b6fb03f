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
  config: v.strictObject({ secrets: v.strictObject({ node: v.record(v.string(), v.array(SecretEntry)) }) }),
});

export const GET = handler(
  { auth: "admin", summary: "Show one secret of a node", responses: { 200: "secret", 404: "unknown node or secret" } },
  async ({ services, params }) => {
    checkSecretPathNames("node", params.node, params.secret);
    return json({ config: { secrets: await getSecret(services.db.orm, services.secrets, "node", params.node, params.secret) } });
  },
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Update one secret of a node, creating it when missing",
    body: SecretBody,
    responses: { 204: "secret updated or created", 400: "invalid entry", 404: "unknown node" },
  },
  async ({ services, params, body }) => {
    checkSecretPathNames("node", params.node, params.secret);
    const entry = unwrapSingleSecret(body.config.secrets.node, "node", params.node, params.secret);
    await saveSecret(services.db, services.secrets, "node", params.node, { ...entry, name: params.secret }, { create: true });
    return noContent();
  },
);
