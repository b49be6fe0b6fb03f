import { bootRequestOf } from "../../../lib/boot.ts";
import { serveInstallScript } from "../../../lib/install.ts";
import { handler } from "../../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "Bash install script of the node; for the node's own provisioning address, an admin token or the node's provision token",
    responses: {
      200: "install script",
      400: "invalid node name",
      403: "neither the node's provisioning address nor an admin or matching provision token",
      404: "unknown node, or its OS image has no image file",
      503: "database unavailable",
    },
  },
  ({ c, services, params, caller }) => serveInstallScript(services, bootRequestOf(c), caller, params.node),
);
