import { wrapObjects } from "../../../lib/config-object.ts";
import { listOsimageTags } from "../../../lib/osimages.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List the tags of all OS images", responses: { 200: "tags", 404: "no tag exists" } },
  async ({ services }) => json(wrapObjects("osimagetag", await listOsimageTags(services.db.orm, services.config.files.imageDirectory))),
);
