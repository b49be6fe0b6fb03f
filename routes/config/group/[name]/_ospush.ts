import * as v from "valibot";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { flag, text } from "../../../../lib/fields.ts";
import { startGroupPush } from "../../../../lib/osgrab.ts";
import { handler, json } from "../../../../lib/route.ts";

const PushFields = v.strictObject({
  name: v.optional(text(63)),
  osimage: v.optional(text(127)),
  nodry: v.optional(flag),
});

export const POST = handler(
  {
    auth: "admin",
    summary: "Copy the OS image onto every member node with rsync over ssh; a dry run unless nodry",
    body: configEnvelope("group", PushFields),
    responses: { 200: "job queued, with request_id", 404: "unknown group or image" },
  },
  async ({ services, params, body }) => {
    const fields = unwrapEnvelope(body, "group", params.name);
    const { handle, image } = await startGroupPush(services, params.name, { osimage: fields.osimage ?? undefined, nodry: fields.nodry === true });
    return json({ message: `osimage push to group ${params.name} from ${image} ${handle.existing ? "already queued" : "queued"}`, request_id: handle.requestId });
  },
);
