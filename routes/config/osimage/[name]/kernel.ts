import * as v from "valibot";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { flag, text } from "../../../../lib/fields.ts";
import { setKernelVersion } from "../../../../lib/pack-kernel.ts";
import { handler, json, noContent } from "../../../../lib/route.ts";

const KernelFields = v.strictObject({
  kernelversion: v.pipe(text(60), v.regex(/^[A-Za-z0-9._+~-]+$/, "must be a kernel release such as 6.1.0-28-amd64")),
  bare: v.optional(flag),
});

export const POST = handler(
  {
    auth: "admin",
    summary: "Set the image's kernel version and repack it, or only set it when bare",
    body: configEnvelope("osimage", KernelFields),
    responses: { 200: "pack job queued, with request_id", 204: "kernel version set (bare)", 404: "unknown image" },
  },
  async ({ services, params, body }) => {
    const fields = unwrapEnvelope(body, "osimage", params.name);
    const handle = await setKernelVersion(services, params.name, fields.kernelversion, fields.bare === true);
    if (handle === null) return noContent();
    return json({ message: `osimage pack for ${params.name} queued`, request_id: handle.requestId });
  },
);
