import { checkOsAccountName, deleteOsAccount } from "../../../../lib/os-accounts.ts";
import { handler, noContent } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete an OS user through obol", responses: { 204: "deleted", 404: "unknown user", 503: "obol failed or is missing" } },
  async ({ services, params }) => {
    checkOsAccountName("user", params.name);
    await deleteOsAccount(services, "user", params.name);
    return noContent();
  },
);
