import { deleteBmcSetup } from "../../../../lib/bmcsetups.ts";
import { handler, noContent } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete a BMC setup that no group or node uses", responses: { 204: "deleted", 404: "unknown BMC setup", 409: "still in use" } },
  async ({ services, params }) => {
    await deleteBmcSetup(services.db, params.name);
    return noContent();
  },
);
