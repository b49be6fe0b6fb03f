import { wrapObjects } from "../../../../lib/config-object.ts";
import { listOsimageTags } from "../../../../lib/osimages.ts";
import { handler, json } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List the tags of one OS image, named in the path", responses: { 200: "tags", 404: "unknown OS image or no tags" } },
  async ({ services, params }) =>
    json(wrapObjects("osimagetag", await listOsimageTags(services.db.orm, services.config.files.imageDirectory, params.name))),
);
