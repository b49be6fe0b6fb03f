import * as v from "valibot";
import { invalid } from "../../../../lib/errors.ts";
import { parsePowerAction, startBulkPower } from "../../../../lib/power.ts";
import { handler, json } from "../../../../lib/route.ts";

/** `{"control": {"power": {"<action>": {"hostlist": "node[001-004]"}}}}`, as luna2-cli sends it. */
const BulkPowerBody = v.strictObject({
  control: v.strictObject({
    power: v.record(v.string(), v.strictObject({ hostlist: v.pipe(v.string(), v.minLength(1, "must not be empty")) })),
  }),
});

export const POST = handler(
  {
    auth: "admin",
    summary: "Run a power action on every node of a hostlist in a background job",
    body: BulkPowerBody,
    responses: {
      200: '{"message", "request_id", "control": {"power": {"ok", "on", "off"}, "failed"}}; poll /control/status/{request_id}',
      400: "invalid body, unknown action or malformed hostlist",
      404: "nodes of the hostlist not found",
    },
  },
  async ({ services, params, body }) => {
    const action = parsePowerAction(params.action);
    const actions = Object.keys(body.control.power);
    if (actions.length !== 1 || actions[0] !== action) {
      const sent = actions.map((key) => `"${key}"`).join(", ") || "nothing";
      throw invalid(`Invalid request: body must contain exactly control.power.${action} for /_${action}, not ${sent}`);
    }

    const started = await startBulkPower(services, action, body.control.power[action].hostlist);
    const verb = started.existing ? "already running" : "started";
    return json({
      message: `Power ${action} for ${started.hosts.length} nodes ${verb}`,
      request_id: started.requestId,
      control: { power: { ok: {}, on: {}, off: {} }, failed: {} },
    });
  },
);
