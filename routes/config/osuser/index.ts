import { listOsAccounts } from "../../../lib/os-accounts.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List OS users through obol", responses: { 200: "users", 404: "no users", 503: "obol failed or is missing" } },
  async ({ services }) => json({ config: { osuser: await listOsAccounts(services, "user") } }),
);
