import { controlNodePower, parsePowerAction } from "../../../../../lib/power.ts";
import { handler, json, noContent } from "../../../../../lib/route.ts";

export const GET = handler(
  {
    auth: "admin",
    summary: "Run a power action (on, off, status, reset, cycle, soft, identify, noidentify) on one node's BMC",
    responses: {
      200: '{"control": {"power": "on" | "off"}} for status',
      204: "action done",
      400: "invalid node name or unknown action",
      404: "unknown node, or a node without a BMC address or BMC setup",
      503: "BMC did not answer, rejected the credentials or rejected the command",
    },
  },
  async ({ services, params }) => {
    const action = parsePowerAction(params.action);
    const output = await controlNodePower(services, params.hostname, action);
    return action === "status" ? json({ control: { power: output } }) : noContent();
  },
);
