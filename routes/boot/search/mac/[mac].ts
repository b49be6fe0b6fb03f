import { bootRequestOf } from "../../../../lib/boot.ts";
import { serveBootByMac } from "../../../../lib/boot-view.ts";
import { handler } from "../../../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "iPXE boot script of the node with this MAC address; an unknown MAC goes through switch-port and next-node discovery",
    responses: {
      200: "iPXE script of the node",
      400: "iPXE script naming the invalid MAC address",
      404: "iPXE script: no node has or may take this MAC address",
      503: "iPXE script: database unavailable or booting paused while the OS image is packed",
    },
  },
  ({ c, services, params }) => serveBootByMac(services, bootRequestOf(c), params.mac),
);
