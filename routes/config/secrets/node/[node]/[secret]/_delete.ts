import { checkSecretPathNames, deleteSecret } from "../../../../../../lib/node-secrets.ts";
import { handler, noContent } from "../../../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete one secret of a node", responses: { 204: "deleted", 404: "unknown node or secret" } },
  async ({ services, params }) => {
    checkSecretPathNames("node", params.node, params.secret);
    await deleteSecret(services.db, "node", params.node, params.secret);
    return noContent();
  },
);
