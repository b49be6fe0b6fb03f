import * as v from "valibot";
import { bodyName, requireSameName } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { notFound } from "../../../../lib/errors.ts";
import { flag, LOOSE_NAME, name } from "../../../../lib/fields.ts";
import { cloneOsimage, OSIMAGE_NAME_MAX, osimageFieldEntries } from "../../../../lib/osimages.ts";
import { handler, message } from "../../../../lib/route.ts";

const CloneBody = configEnvelope(
  "osimage",
  v.strictObject({
    ...osimageFieldEntries,
    name: bodyName,
    newosimage: v.optional(name("newosimage", LOOSE_NAME, OSIMAGE_NAME_MAX)),
    nocopy: v.optional(flag),
    bare: v.optional(flag),
  }),
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Clone an OS image to newosimage; nocopy copies the object only",
    body: CloneBody,
    responses: { 201: "cloned", 400: "invalid value", 404: "unknown OS image or newosimage missing", 409: "new name already exists" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, newosimage, nocopy: _nocopy, bare: _bare, ...fields } = unwrapEnvelope(body, "osimage", params.name);
    requireSameName(sentName, params.name, "newosimage");
    // The API specification answers a missing newosimage with 404, not 400.
    if (newosimage === undefined) throw notFound("Invalid request: newosimage is missing: send the name of the new OS image");
    await cloneOsimage(services.db, params.name, newosimage, fields);
    // TODO: without nocopy, queueing the job that copies the image directory (and packs unless bare) belongs to the operations work.
    return message(`OS image ${params.name} cloned as ${newosimage}`, 201);
  },
);
