import * as v from "valibot";
import { getClusterView, updateCluster } from "../../../lib/cluster.ts";
import { invalid } from "../../../lib/errors.ts";
import { domainList, flag, ipList, ipOrEmpty, text } from "../../../lib/fields.ts";
import { handler, json, noContent } from "../../../lib/route.ts";

const ClusterFields = v.objectWithRest(
  {
    name: v.optional(text(63)),
    user: v.optional(text(63)),
    domain_search: v.optional(domainList),
    nameserver_ip: v.optional(ipList),
    forwardserver_ip: v.optional(ipList),
    ntp_server: v.optional(domainList),
    technical_contacts: v.optional(text(255)),
    provision_method: v.optional(text(20)),
    provision_fallback: v.optional(text(20)),
    debug: v.optional(flag),
    security: v.optional(flag),
    packing_bootpause: v.optional(flag),
    createnode_ondemand: v.optional(flag),
    createnode_macashost: v.optional(flag),
    nextnode_discover: v.optional(flag),
    bind_legacy: v.optional(flag),
    dnssec_enable: v.optional(flag),
    dnssec_validation: v.optional(flag),
    controller: v.optional(ipOrEmpty),
    controller_network: v.optional(text(63)),
  },
  // Other controllers' addresses arrive under their hostname with '-' written as '_'.
  ipOrEmpty,
);

const ClusterBody = v.strictObject({ config: v.strictObject({ cluster: ClusterFields }) });

export const GET = handler({ auth: "admin", summary: "Show the cluster settings and controllers" }, async ({ services }) =>
  json(await getClusterView(services.db.orm, services.config)));

export const POST = handler(
  {
    auth: "admin",
    summary: "Update cluster settings and controller addresses",
    body: ClusterBody,
    responses: { 204: "updated", 400: "invalid value", 409: "address in use" },
  },
  async ({ services, body }) => {
    const fields = body.config.cluster;
    if (Object.keys(fields).length === 0) throw invalid("Invalid request: Did not receive data");
    const update: Record<string, unknown> = {};
    const controllerAddresses: Record<string, string | null> = {};
    for (const [key, value] of Object.entries(fields)) {
      if (key === "controller_network") continue;
      if (key === "controller" || !(key in ClusterFields.entries)) controllerAddresses[key] = value as string | null;
      else update[key] = value;
    }
    await updateCluster(services.db, { ...update, controllerAddresses, controllerNetwork: fields.controller_network ?? undefined });
    return noContent();
  },
);
