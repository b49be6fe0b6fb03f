import * as v from "valibot";
import { bodyName, requireSameName } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { tagField, tagOsimage } from "../../../../lib/osimages.ts";
import { handler, noContent } from "../../../../lib/route.ts";

const TagBody = configEnvelope("osimage", v.strictObject({ name: bodyName, tag: tagField }));

export const POST = handler(
  {
    auth: "admin",
    summary: "Make a tag the active one of an OS image, creating it from the current files; \"\" clears it",
    body: TagBody,
    responses: { 204: "tag set", 400: "invalid or missing tag", 404: "unknown OS image" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, tag } = unwrapEnvelope(body, "osimage", params.name);
    requireSameName(sentName, params.name, "newosimage");
    await tagOsimage(services.db, params.name, tag);
    return noContent();
  },
);
