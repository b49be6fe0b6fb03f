import * as v from "valibot";
import { bodyName, requireSameName, wrapObjects } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { LOOSE_NAME, name } from "../../../../lib/fields.ts";
import { getOsimage, OSIMAGE_NAME_MAX, osimageFieldEntries, saveOsimage, tagField } from "../../../../lib/osimages.ts";
import { handler, json, message, noContent } from "../../../../lib/route.ts";

const OsimageBody = configEnvelope(
  "osimage",
  v.strictObject({
    ...osimageFieldEntries,
    name: bodyName,
    tag: v.optional(tagField),
    newosimage: v.optional(name("newosimage", LOOSE_NAME, OSIMAGE_NAME_MAX)),
  }),
);

export const GET = handler(
  {
    auth: "admin",
    summary: "Show an OS image; grab_filesystems, grab_exclude and kerneloptions are base64-encoded",
    responses: { 200: "OS image", 404: "unknown OS image" },
  },
  async ({ services, params }) => json(wrapObjects("osimage", await getOsimage(services.db.orm, params.name, services.config.files.imageDirectory))),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create an OS image object, or update, tag or rename (newosimage) an existing one",
    body: OsimageBody,
    responses: { 201: "created", 204: "updated", 400: "invalid value", 409: "new name already exists" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, tag, newosimage, ...fields } = unwrapEnvelope(body, "osimage", params.name);
    requireSameName(sentName, params.name, "newosimage");
    const result = await saveOsimage(services.db, params.name, { fields, tag, newName: newosimage }, services.config.files.imageDirectory);
    return result === "created" ? message(`OS image ${params.name} created`, 201) : noContent();
  },
);
