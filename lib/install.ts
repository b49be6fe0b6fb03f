import { eq } from "drizzle-orm";
import type { Caller } from "./auth.ts";
import { buildInstallView } from "./boot-view.ts";
import { type BootRequest, databaseErrorCode, loadNodeBoot, type NodeBootRecord, resolveServerEndpoint } from "./boot.ts";
import type { Orm } from "./db/database.ts";
import { cluster, node, nodeGroup } from "./db/schema/index.ts";
import { forbidden, invalid, notFound, unavailable } from "./errors.ts";
import { nameProblem, STRICT_NAME } from "./fields.ts";
import type { Services } from "./services.ts";

/**
 * Decides whether a request may fetch the install script of a node. It passes with an admin
 * token, with the node's own provision token, or when it comes from the node's provisioning
 * address (the address row of its provisioning interface). Anything else is rejected with 403,
 * also for an unknown node, so that only authorised callers learn which nodes exist.
 */
export function authorizeInstall(caller: Caller, clientAddress: string | null, nodeName: string, record: NodeBootRecord | null): void {
  if (caller.kind === "admin") return;
  if (caller.kind === "provision" && caller.node === nodeName) return;
  if (record !== null && clientAddress !== null && (clientAddress === record.ipaddress || clientAddress === record.ipaddressIpv6)) return;
  const reason = caller.kind === "provision"
    ? `the provision token belongs to node "${caller.node}"`
    : `${clientAddress ?? "an unknown address"} is not its provisioning address and no admin or provision token was sent`;
  throw forbidden(`Access to the install script of node "${nodeName}" denied: ${reason}`);
}

async function loadInstallExtras(db: Orm, nodeId: number) {
  const [row] = await db
    .select({
      nodePrescript: node.prescript,
      nodePartscript: node.partscript,
      nodePostscript: node.postscript,
      groupPrescript: nodeGroup.prescript,
      groupPartscript: nodeGroup.partscript,
      groupPostscript: nodeGroup.postscript,
      nameserver: cluster.nameserver_ip,
    })
    .from(node)
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .leftJoin(cluster, eq(cluster.id, 1))
    .where(eq(node.id, nodeId));
  const pick = (own: string | null | undefined, inherited: string | null | undefined): string | null => {
    if (own) return own;
    return inherited || null;
  };
  return {
    prescript: pick(row?.nodePrescript, row?.groupPrescript),
    partscript: pick(row?.nodePartscript, row?.groupPartscript),
    postscript: pick(row?.nodePostscript, row?.groupPostscript),
    // The cluster may list several name servers; the installer uses the first.
    nameserver: row?.nameserver?.split(/[\s,]+/).find((item) => item !== "") ?? null,
  };
}

/**
 * Serves GET /boot/install/{node}: the bash install script of the node, rendered from
 * templates/install.sh.eta with a new provision token. Throws 400 for an invalid name, 403 for
 * a caller authorizeInstall rejects, 404 for an unknown node or one whose OS image has no image
 * file yet, and 503 when the database fails.
 */
export async function serveInstallScript(services: Services, request: BootRequest, caller: Caller, nodeName: string): Promise<Response> {
  try {
    return await renderInstallScript(services, request, caller, nodeName);
  } catch (error) {
    const code = databaseErrorCode(error);
    if (code === null) throw error;
    throw unavailable(`Database unavailable (${code}): try again later`, error);
  }
}

async function renderInstallScript(services: Services, request: BootRequest, caller: Caller, nodeName: string): Promise<Response> {
  const problem = nameProblem("Node name", nodeName, STRICT_NAME);
  if (problem) throw invalid(`Invalid request: ${problem}`);

  const record = await loadNodeBoot(services.db.orm, { name: nodeName });
  authorizeInstall(caller, request.connection.remote, nodeName, record);
  if (record === null) throw notFound(`Node "${nodeName}" does not exist`);
  if (record.osimage === null) throw notFound(`Node "${nodeName}" has no OS image: set osimage on the node or on group "${record.group}"`);
  if (record.imagefile === null) throw notFound(`OS image "${record.osimage}" of node "${nodeName}" has no imagefile: pack the OS image`);

  const [endpoint, extras, token] = await Promise.all([
    resolveServerEndpoint(services.db.orm, services.config, request.connection, request.hostHeader, record.controllers),
    loadInstallExtras(services.db.orm, record.nodeId),
    services.tokens.provisionTokenFor(nodeName),
  ]);
  const view = buildInstallView(endpoint, record, extras, token, services.config.api.verifyCertificate);
  return new Response(services.templates.render("install.sh", view), {
    status: 200,
    headers: { "content-type": "text/x-shellscript; charset=utf-8", "cache-control": "no-store" },
  });
}
