import * as v from "valibot";
import { checkApiCredentials } from "../lib/login.ts";
import { handler, json } from "../lib/route.ts";

const Credentials = v.strictObject({ username: v.optional(v.string()), password: v.optional(v.string()) });

export const POST = handler(
  { auth: "none", summary: "Issue an admin token for the API credentials", body: Credentials, responses: { 201: "token", 400: "invalid body", 401: "wrong credentials" } },
  async ({ services, body }) => {
    checkApiCredentials(services.config, body.username, body.password);
    return json({ token: await services.tokens.issueAdmin() }, 201);
  },
);
