import { deleteOsimageTag } from "../../../../../../lib/osimages.ts";
import { handler, noContent } from "../../../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete a tag of an OS image when no group or node is set to it", responses: { 204: "deleted", 404: "unknown OS image or tag", 409: "still in use" } },
  async ({ services, params }) => {
    await deleteOsimageTag(services.db, params.name, params.tag);
    return noContent();
  },
);
