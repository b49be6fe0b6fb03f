import { deleteNetwork } from "../../../../lib/networks.ts";
import { handler, noContent } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete a network that nothing uses", responses: { 204: "deleted", 404: "unknown network", 409: "in use" } },
  async ({ services, params }) => {
    await deleteNetwork(services.db, params.name);
    return noContent();
  },
);
