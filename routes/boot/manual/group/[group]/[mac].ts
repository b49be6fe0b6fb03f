import { bootRequestOf } from "../../../../../lib/boot.ts";
import { serveManualGroupBoot } from "../../../../../lib/boot-view.ts";
import { handler } from "../../../../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "Give the MAC address to a free node of the group, or to a new one, and return its iPXE boot script",
    responses: {
      200: "iPXE script of the node",
      400: "iPXE script naming the invalid group name or MAC address",
      404: "iPXE script: unknown group, or nothing to boot",
      503: "iPXE script: database unavailable",
    },
  },
  ({ c, services, params }) => serveManualGroupBoot(services, bootRequestOf(c), params.group, params.mac),
);
