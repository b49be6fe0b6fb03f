import { controlNodePower } from "../../../lib/power.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  {
    auth: "admin",
    summary: "Power status of one node, read from its BMC with ipmitool",
    responses: {
      200: '{"control": {"power": "on" | "off"}}',
      400: "invalid node name",
      404: "unknown node, or a node without a BMC address or BMC setup",
      503: "BMC did not answer, rejected the credentials or rejected the command",
    },
  },
  async ({ services, params }) => json({ control: { power: await controlNodePower(services, params.hostname, "status") } }),
);
