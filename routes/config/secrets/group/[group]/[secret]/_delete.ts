import { checkSecretPathNames, deleteSecret } from "../../../../../../lib/node-secrets.ts";
import { handler, noContent, type RouteHandler } from "../../../../../../lib/route.ts";

const deleteGroupSecret: RouteHandler = handler(
  { auth: "admin", summary: "Delete one secret of a group", responses: { 204: "deleted", 404: "unknown group or secret" } },
  async ({ services, params }) => {
    checkSecretPathNames("group", params.group, params.secret);
    await deleteSecret(services.db, "group", params.group, params.secret);
    return noContent();
  },
);

// The specification deletes with POST. LUNA2-COMPAT: it returns 405 for GET, but `luna secrets
// remove group` and the original daemon delete with GET, so both methods are served.
export const POST = deleteGroupSecret;
export const GET = deleteGroupSecret;
