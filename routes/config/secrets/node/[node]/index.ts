import * as v from "valibot";
import {
  checkSecretPathNames,
  describeSave,
  getNodeSecrets,
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
  config: v.strictObject({ secrets: v.strictObject({ node: v.record(v.string(), v.array(SecretEntry)) }) }),
});

export const GET = handler(
  {
    auth: { node: "node" },
    summary: "List a node's secrets and those of its group; the node's own provision token may read them",
    responses: { 200: "secrets", 403: "provision token of another node", 404: "unknown node or no secrets" },
  },
  async ({ services, params }) => {
    checkSecretPathNames("node", params.node);
    return json({ config: { secrets: await getNodeSecrets(services.db.orm, services.secrets, params.node) } });
  },
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create or update several secrets of a node",
    body: SecretsBody,
    responses: { 201: "at least one secret created", 204: "secrets updated", 400: "invalid entry", 404: "unknown node" },
  },
  async ({ services, params, body }) => {
    checkSecretPathNames("node", params.node);
    const entries = unwrapSecretList(body.config.secrets.node, "node", params.node);
    const result = await saveSecrets(services.db, services.secrets, "node", params.node, entries);
    return result.created.length > 0 ? message(describeSave("node", params.node, result), 201) : noContent();
  },
);
