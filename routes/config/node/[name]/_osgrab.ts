import * as v from "valibot";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { flag, text } from "../../../../lib/fields.ts";
import { startGrab } from "../../../../lib/osgrab.ts";
import { handler, json } from "../../../../lib/route.ts";

const GrabFields = v.strictObject({
  name: v.optional(text(63)),
  osimage: v.optional(text(127)),
  nodry: v.optional(flag),
  bare: v.optional(flag),
});

export const POST = handler(
  {
    auth: "admin",
    summary: "Copy the node's live file systems into its OS image with rsync over ssh; a dry run unless nodry",
    body: configEnvelope("node", GrabFields),
    responses: { 200: "job queued, with request_id", 404: "unknown node or image" },
  },
  async ({ services, params, body }) => {
    const fields = unwrapEnvelope(body, "node", params.name);
    const options = { osimage: fields.osimage ?? undefined, nodry: fields.nodry === true, bare: fields.bare === true };
    const { handle, image } = await startGrab(services, params.name, options);
    return json({ message: `osimage grab from ${params.name} to ${image} ${handle.existing ? "already queued" : "queued"}`, request_id: handle.requestId });
  },
);
