import { startPack } from "../../../../lib/pack.ts";
import { handler, json } from "../../../../lib/route.ts";

export const GET = handler(
  {
    auth: "admin",
    summary: "Pack the image tree, kernel and initrd into the files directory as a job",
    responses: { 200: "job queued, with request_id", 400: "no kernel version", 404: "unknown image" },
  },
  async ({ services, params }) => {
    const { requestId, existing } = await startPack(services, params.name);
    const state = existing ? "already queued" : "queued";
    return json({ message: `osimage pack for ${params.name} ${state}`, request_id: requestId });
  },
);
