import { handler, noContent } from "../../../../lib/route.ts";
import { deleteSwitch } from "../../../../lib/switches.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete a switch that no node is connected to", responses: { 204: "deleted", 404: "unknown switch", 409: "nodes still use it" } },
  async ({ services, params }) => {
    await deleteSwitch(services.db, params.name);
    return noContent();
  },
);
