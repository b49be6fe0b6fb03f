import { bootRequestOf } from "../../lib/boot.ts";
import { serveBootMenu } from "../../lib/boot-view.ts";
import { handler } from "../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "iPXE boot menu; every URL in it points at the controller address of the network the request came from",
    responses: { 200: "iPXE script", 503: "iPXE script naming the unavailable backend" },
  },
  ({ c, services }) => serveBootMenu(services, bootRequestOf(c), "full"),
);
