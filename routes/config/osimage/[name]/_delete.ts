import { deleteOsimage } from "../../../../lib/osimages.ts";
import { handler, noContent } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete an OS image and its tags when no group or node uses it", responses: { 204: "deleted", 404: "unknown OS image", 409: "still in use" } },
  async ({ services, params }) => {
    await deleteOsimage(services.db, params.name);
    return noContent();
  },
);
