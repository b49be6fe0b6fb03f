import { checkOsAccountName, deleteOsAccount } from "../../../../lib/os-accounts.ts";
import { handler, noContent } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete an OS group through obol", responses: { 204: "deleted", 404: "unknown group", 503: "obol failed or is missing" } },
  async ({ services, params }) => {
    checkOsAccountName("group", params.name);
    await deleteOsAccount(services, "group", params.name);
    return noContent();
  },
);
