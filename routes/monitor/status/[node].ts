import * as v from "valibot";
import { invalid } from "../../../lib/errors.ts";
import { text } from "../../../lib/fields.ts";
import { getNodeStatus, setNodeStatus, STATE_MAX_LENGTH, STATUS_MAX_LENGTH } from "../../../lib/node-status.ts";
import { checkNodeName } from "../../../lib/nodes.ts";
import { handler, json, noContent } from "../../../lib/route.ts";

const StatusReport = v.strictObject({
  state: v.pipe(text(STATE_MAX_LENGTH), v.minLength(1, "must not be empty")),
  status: v.optional(v.nullable(text(STATUS_MAX_LENGTH))),
});

const StatusBody = v.strictObject({ monitor: v.strictObject({ status: v.record(v.string(), StatusReport) }) });

export const GET = handler(
  {
    auth: "none",
    summary: "Show the install state a node last reported; status is 200 or 500 for installer states",
    responses: { 200: "state and status", 400: "invalid node name", 404: "no such node" },
  },
  async ({ services, params }) => json(await getNodeStatus(services.db.orm, checkNodeName(params.node))),
);

export const POST = handler(
  {
    auth: { node: "node" },
    summary: "Store the install state a node reports, with the node's provision token or an admin token",
    body: StatusBody,
    responses: { 204: "stored", 400: "invalid state or body for another node", 401: "token missing or invalid", 403: "provision token of another node", 404: "no such node" },
  },
  async ({ services, params, body }) => {
    const nodeName = checkNodeName(params.node);
    const reports = body.monitor.status;
    const names = Object.keys(reports);
    if (names.length !== 1 || names[0] !== nodeName) {
      throw invalid(`Invalid request: body must contain exactly monitor.status.${nodeName}, not ${names.map((key) => `"${key}"`).join(", ") || "nothing"}`);
    }
    await setNodeStatus(services.db, nodeName, reports[nodeName], services.clock.now());
    return noContent();
  },
);
