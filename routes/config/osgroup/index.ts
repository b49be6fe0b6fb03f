import { listOsAccounts } from "../../../lib/os-accounts.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List OS groups through obol", responses: { 200: "groups", 404: "no groups", 503: "obol failed or is missing" } },
  async ({ services }) => json({ config: { osgroup: await listOsAccounts(services, "group") } }),
);
