import * as v from "valibot";
import {
  checkSecretPathNames,
  cloneSecret,
  secretContent,
  secretName,
  secretPath,
  unwrapSingleSecret,
} from "../../../../../../lib/node-secrets.ts";
import { handler, message } from "../../../../../../lib/route.ts";

const CloneEntry = v.strictObject({
  name: v.optional(secretName()),
  newsecretname: secretName("newsecretname"),
  // LUNA2-COMPAT: luna2-cli sends `"content": false` and `"path": null` when the copy keeps the source's values.
  content: v.optional(v.union([secretContent, v.literal(false)])),
  path: v.optional(secretPath),
});

const CloneBody = v.strictObject({
  config: v.strictObject({ secrets: v.strictObject({ group: v.record(v.string(), v.array(CloneEntry)) }) }),
});

export const POST = handler(
  {
    auth: "admin",
    summary: "Copy a secret of a group under a new name",
    body: CloneBody,
    responses: { 201: "secret cloned", 400: "invalid entry", 404: "unknown group or secret", 409: "new name already used" },
  },
  async ({ services, params, body }) => {
    checkSecretPathNames("group", params.group, params.secret);
    const entry = unwrapSingleSecret(body.config.secrets.group, "group", params.group, params.secret);
    await cloneSecret(services.db, services.secrets, "group", params.group, params.secret, {
      newName: entry.newsecretname,
      content: entry.content === false ? undefined : entry.content,
      path: entry.path ?? undefined,
    });
    return message(`Cloned secret "${params.secret}" of group "${params.group}" to "${entry.newsecretname}"`, 201);
  },
);
