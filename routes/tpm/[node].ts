import * as v from "valibot";
import { handler, json } from "../../lib/route.ts";
import { loginWithTpm } from "../../lib/tpm.ts";

const TpmLogin = v.strictObject({
  tpm_sha256: v.optional(v.pipe(v.string(), v.maxLength(256))),
  username: v.optional(v.string()),
  password: v.optional(v.string()),
});

export const POST = handler(
  {
    auth: "none",
    summary: "Issue a token for API credentials, or a provision token for the node's registered TPM SHA256",
    body: TpmLogin,
    responses: { 200: "token", 401: "wrong credentials or TPM hash" },
  },
  async ({ services, params, body }) => json({ token: await loginWithTpm(services, params.node, body) }),
);
