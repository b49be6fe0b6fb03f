import * as v from "valibot";
import { bodyName, requireSameName } from "../../../../lib/config-object.ts";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { notFound } from "../../../../lib/errors.ts";
import { flag, LOOSE_NAME, name } from "../../../../lib/fields.ts";
import { cloneOsimage, OSIMAGE_NAME_MAX, osimageFieldEntries } from "../../../../lib/osimages.ts";
import { startImageCopy } from "../../../../lib/osimage-copy.ts";
import { handler, json, message } from "../../../../lib/route.ts";

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
    summary: "Clone an OS image to newosimage and copy its directory as a job (packed unless bare); nocopy copies the record only",
    body: CloneBody,
    responses: { 200: "record cloned, copy job queued with request_id", 201: "record cloned (nocopy)", 400: "invalid value", 404: "unknown OS image or newosimage missing", 409: "new name already exists" },
  },
  async ({ services, params, body }) => {
    const { name: sentName, newosimage, nocopy, bare, ...fields } = unwrapEnvelope(body, "osimage", params.name);
    requireSameName(sentName, params.name, "newosimage");
    // The API specification returns 404 for a missing newosimage, not 400.
    if (newosimage === undefined) throw notFound("Invalid request: newosimage is missing: send the name of the new OS image");
    await cloneOsimage(services.db, params.name, newosimage, fields);
    if (nocopy) return message(`OS image ${params.name} cloned as ${newosimage}`, 201);

    // luna2-cli expects 200 with a request_id when the directory is copied, as the original returns.
    const { requestId } = await startImageCopy(services, params.name, newosimage, bare === true);
    return json({ message: `osimage clone for ${newosimage} queued`, request_id: requestId });
  },
);
