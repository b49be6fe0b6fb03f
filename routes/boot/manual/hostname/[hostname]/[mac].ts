import { bootRequestOf } from "../../../../../lib/boot.ts";
import { serveManualHostnameBoot } from "../../../../../lib/boot-view.ts";
import { handler } from "../../../../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "Give the MAC address to the named node and return its iPXE boot script",
    responses: {
      200: "iPXE script of the node",
      400: "iPXE script naming the invalid node name or MAC address",
      404: "iPXE script: unknown node, or nothing to boot",
      503: "iPXE script: database unavailable",
    },
  },
  ({ c, services, params }) => serveManualHostnameBoot(services, bootRequestOf(c), params.hostname, params.mac),
);
