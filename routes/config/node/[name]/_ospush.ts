import * as v from "valibot";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { flag, text } from "../../../../lib/fields.ts";
import { startPush } from "../../../../lib/osgrab.ts";
import { handler, json } from "../../../../lib/route.ts";

const PushFields = v.strictObject({
  name: v.optional(text(63)),
  osimage: v.optional(text(127)),
  nodry: v.optional(flag),
});

export const POST = handler(
  {
    auth: "admin",
    summary: "Copy the OS image onto the node's live file systems with rsync over ssh; a dry run unless nodry",
    body: configEnvelope("node", PushFields),
    responses: { 200: "job queued, with request_id", 404: "unknown node or image" },
  },
  async ({ services, params, body }) => {
    const fields = unwrapEnvelope(body, "node", params.name);
    const options = { osimage: fields.osimage ?? undefined, nodry: fields.nodry === true };
    const { handle, image } = await startPush(services, params.name, options);
    return json({ message: `osimage push from ${image} to ${params.name} ${handle.existing ? "already queued" : "queued"}`, request_id: handle.requestId });
  },
);
