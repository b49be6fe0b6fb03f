import { wrapObjects } from "../../../lib/config-object.ts";
import { listOsimages } from "../../../lib/osimages.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List OS images", responses: { 200: "OS images", 404: "no OS image exists" } },
  async ({ services }) => json(wrapObjects("osimage", await listOsimages(services.db.orm, services.config.files.imageDirectory))),
);
