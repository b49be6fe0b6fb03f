import { bootRequestOf } from "../../lib/boot.ts";
import { serveBootMenu } from "../../lib/boot-view.ts";
import { handler } from "../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "Short iPXE boot menu, without the group and node lists",
    responses: { 200: "iPXE script", 503: "iPXE script naming the unavailable backend" },
  },
  ({ c, services }) => serveBootMenu(services, bootRequestOf(c), "short"),
);
