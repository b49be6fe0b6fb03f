import { and, eq, inArray, sql } from "drizzle-orm";
import { requireValidName } from "./config-object.ts";
import type { Config } from "./config.ts";
import type { Database } from "./db/database.ts";
import { bmcsetup, ipAddress, node, nodeGroup, nodeInterface } from "./db/schema/index.ts";
import { invalid, notFound, unavailable } from "./errors.ts";
import { STRICT_NAME } from "./fields.ts";
import { type BmcTarget, IpmiError, POWER_ACTIONS, type PowerAction, runIpmiPower } from "./hardware/ipmi.ts";
import { expandHostlist, foldHostlist } from "./hostlist.ts";
import { createJob, type JobReporter, readJobStatus, runJob } from "./jobs.ts";
import { describeError, logger } from "./log.ts";
import type { Services } from "./services.ts";

const log = logger("power");

/** Name of the node interface that carries the BMC address. */
const BMC_INTERFACE = "BMC";

/** Node names per lookup query, below SQLite's limit on bound parameters. */
const LOOKUP_CHUNK = 500;

/** Job kind of bulk power actions, and the subsystem name in status lines. */
const SUBSYSTEM = "power";

/** A node with its BMC target, or with the reason it has none. */
export type PowerNode =
  | { name: string; target: BmcTarget; bmcsetup: string }
  | { name: string; target: null; problem: string };

/** Checks an action from a URL segment such as `_on`; throws `invalid` naming it otherwise. */
export function parsePowerAction(segment: string): PowerAction {
  const action = segment.startsWith("_") ? segment.slice(1) : segment;
  if (!(POWER_ACTIONS as readonly string[]).includes(action)) {
    throw invalid(`Invalid request: unknown power action "${action}": use one of ${POWER_ACTIONS.join(", ")}`);
  }
  return action as PowerAction;
}

/**
 * Loads the BMC address and credentials of each named node that exists: the address of its
 * interface named `BMC` and the BMC setup of the node, or else of its group. Unknown names are
 * absent from the result.
 */
export async function findPowerNodes(db: Database, config: Config, names: readonly string[]): Promise<Map<string, PowerNode>> {
  const found = new Map<string, PowerNode>();
  for (let start = 0; start < names.length; start += LOOKUP_CHUNK) {
    const rows = await db.orm
      .select({
        name: node.name,
        group: nodeGroup.name,
        setup: bmcsetup,
        ipv4: ipAddress.ipaddress,
        ipv6: ipAddress.ipaddress_ipv6,
      })
      .from(node)
      .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
      .leftJoin(bmcsetup, eq(bmcsetup.id, sql`coalesce(${node.bmcsetup_id}, ${nodeGroup.bmcsetup_id})`))
      .leftJoin(nodeInterface, and(eq(nodeInterface.node_id, node.id), eq(nodeInterface.interface, BMC_INTERFACE)))
      .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
      .where(inArray(node.name, names.slice(start, start + LOOKUP_CHUNK)));

    for (const row of rows) {
      const address = row.ipv4 ?? row.ipv6;
      if (!address) {
        found.set(row.name, { name: row.name, target: null, problem: `no interface named "${BMC_INTERFACE}" with an IP address` });
      } else if (!row.setup) {
        found.set(row.name, { name: row.name, target: null, problem: `no BMC setup on the node or its group "${row.group}"` });
      } else {
        found.set(row.name, { name: row.name, target: toTarget(config, address, row.setup), bmcsetup: row.setup.name });
      }
    }
  }
  return found;
}

function toTarget(config: Config, address: string, setup: typeof bmcsetup.$inferSelect): BmcTarget {
  return {
    address,
    port: config.bmc.port,
    username: setup.username,
    password: setup.password,
    cipherSuite: setup.cipher_suite ?? config.bmc.cipherSuite,
    privilege: (setup.privilege as BmcTarget["privilege"] | null) ?? config.bmc.privilege,
    timeoutSeconds: Math.max(1, Math.round(setup.timeout ?? config.bmc.timeoutSeconds)),
    retries: setup.retries ?? config.bmc.retries,
  };
}

/** Turns `Chassis Power is on` into `on`, as luna2-cli shows it; other output is kept in lower case. */
function summariseOutput(stdout: string, action: PowerAction): string {
  const text = stdout.replace(/Chassis Power is |Chassis Power Control: /g, "").replace(/\s+/g, " ").trim().toLowerCase();
  return text || action;
}

/**
 * Runs one action on one node's BMC and returns the summarised output (`on` or `off` for
 * status). Throws `notFound` for an unknown node or one without a BMC address or BMC setup, and
 * `unavailable` when the BMC does not respond, rejects the credentials or rejects the command.
 */
export async function controlNodePower(services: Services, hostname: string, action: PowerAction): Promise<string> {
  requireValidName("Node name", hostname, STRICT_NAME);
  const powerNode = (await findPowerNodes(services.db, services.config, [hostname])).get(hostname);
  if (!powerNode) throw notFound(`Node "${hostname}" not found`);
  if (!powerNode.target) throw notFound(`Node "${hostname}" cannot be powered: ${powerNode.problem}`);

  try {
    const { stdout } = await runIpmiPower(services.hardware, powerNode.target, action);
    return summariseOutput(stdout, action);
  } catch (error) {
    if (!(error instanceof IpmiError)) throw error;
    // Every BMC failure is a 503 (the app's error handler logs it): the daemon works, but the node
    // cannot be controlled through its BMC now, whether the BMC is silent or rejects the
    // credentials or the command.
    throw unavailable(`Cannot run power ${action} on node "${hostname}": ${explain(error, powerNode.bmcsetup)}`, error);
  }
}

function explain(error: IpmiError, setupName: string): string {
  if (error.failure === "credentials") return `${error.message}: check the username and password of BMC setup "${setupName}"`;
  return error.message;
}

/** A started or joined bulk power job. */
export interface BulkPowerStart {
  requestId: string;
  existing: boolean;
  hosts: string[];
}

/**
 * Validates a hostlist and starts a job that runs `action` on every node in it, at most
 * `config.bmc.batchSize` BMCs at a time. Throws `invalid` for a malformed hostlist and `notFound`
 * naming the unknown nodes before anything runs. Returns at once; the job writes exactly one
 * result line per node.
 */
export async function startBulkPower(services: Services, action: PowerAction, hostlist: string): Promise<BulkPowerStart> {
  const hosts = expandHostlist(hostlist);
  const nodes = await findPowerNodes(services.db, services.config, hosts);
  const unknown = hosts.filter((host) => !nodes.has(host));
  if (unknown.length > 0) {
    throw notFound(`Nodes in hostlist "${hostlist}" not found: ${foldHostlist(unknown)} (${unknown.length} of ${hosts.length})`);
  }

  const folded = foldHostlist(hosts);
  const { requestId, existing } = await createJob(services.db, services.clock, {
    kind: SUBSYSTEM,
    object: `${action} ${folded}`,
    params: { action, hostlist: folded },
  });
  if (!existing) {
    log.info("Power {action} job {requestId} started for {hosts}", { action, requestId, hosts: folded });
    void runJob(services.db, services.clock, requestId, (reporter) => runBulkPower(services, reporter, action, hosts.map((host) => nodes.get(host)!)));
  }
  return { requestId, existing, hosts };
}

/**
 * Runs `action` on every node with a bounded fan-out and writes one status line per node:
 * `<node>:power <action>:<True|False>:<output>`. Nodes without a BMC address or setup are
 * reported first, without running anything.
 */
export async function runBulkPower(services: Services, reporter: JobReporter, action: PowerAction, nodes: readonly PowerNode[]): Promise<void> {
  const reachable: { name: string; target: BmcTarget }[] = [];
  for (const powerNode of nodes) {
    if (powerNode.target) reachable.push({ name: powerNode.name, target: powerNode.target });
    else await reporter.error(resultLine(powerNode.name, action, false, `cannot be powered: ${powerNode.problem}`), 404);
  }

  const failed = nodes.filter((powerNode) => !powerNode.target).map((powerNode) => powerNode.name);
  // NOTE: BMC_BATCH_DELAY is not applied. A freed slot takes the next node at once, and each BMC
  // gets one call per job (two when it rejects the first cipher suite).
  await runPool(reachable, services.config.bmc.batchSize, async ({ name, target }) => {
    // Each node's result stays a failure until its BMC returned usable output.
    let line = resultLine(name, action, false, "no result");
    let status = 500;
    try {
      const { stdout } = await runIpmiPower(services.hardware, target, action);
      const output = summariseOutput(stdout, action);
      const parsed = action !== "status" || output === "on" || output === "off";
      line = resultLine(name, action, parsed, parsed ? output : `success with unparsable output: ${output}`);
      if (parsed) status = 200;
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      line = resultLine(name, action, false, text);
      status = error instanceof IpmiError ? 503 : 500;
      log.debug("Power {action} on {node} in job {requestId} failed: {error}", {
        action,
        node: name,
        requestId: reporter.requestId,
        error: describeError(error),
      });
    } finally {
      if (status !== 200) failed.push(name);
      await (status === 200 ? reporter.info(line) : reporter.error(line, status));
    }
  });

  if (failed.length > 0) {
    log.warning("Power {action} job {requestId} failed on {count} of {total} nodes: {nodes}", {
      action,
      requestId: reporter.requestId,
      count: failed.length,
      total: nodes.length,
      nodes: foldHostlist(failed),
    });
  }
}

/** Calls `work` for every item with at most `limit` calls running at once. */
async function runPool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function resultLine(name: string, action: PowerAction, ok: boolean, output: string): string {
  // `;;` separates status lines in a poll response, so it must not appear inside one.
  const text = output.replace(/\s*\n\s*/g, " / ").replaceAll(";;", "; ");
  return `${name}:${SUBSYSTEM} ${action}:${ok ? "True" : "False"}:${text}`;
}

/** Result sections of a bulk power poll, as luna2-cli reads them. */
export interface ControlStatus {
  request_id: string;
  control: {
    power: { ok: Record<string, string>; on: Record<string, string>; off: Record<string, string> };
    failed: Record<string, string>;
  };
  /** Lines that are not node results, such as a job failure; absent when there are none. */
  message?: string;
}

const RESULT_LINE = /^([^:]+):power ([a-z]+):(True|False|None):(.*)$/s;

/**
 * Returns the node results of a power job not read yet, in the shape luna2-cli polls for:
 * `control.power.on` and `control.power.off` for status, `control.power.ok` for other actions,
 * `control.failed` with the reason per node. Throws `notFound` once the job ended and every line
 * was read.
 */
export async function readControlStatus(db: Database, requestId: string): Promise<ControlStatus> {
  const { message } = await readJobStatus(db, requestId);
  const status: ControlStatus = { request_id: requestId, control: { power: { ok: {}, on: {}, off: {} }, failed: {} } };
  const other: string[] = [];
  for (const entry of message ? message.split(";;") : []) {
    const text = entry.slice(entry.indexOf(" :: ") + 4);
    const match = RESULT_LINE.exec(text);
    if (!match) {
      other.push(text);
      continue;
    }
    const [, name, action, flag, output] = match;
    if (flag !== "True") status.control.failed[name] = output;
    else if (action !== "status") status.control.power.ok[name] = `power ${action}`;
    else if (output === "on") status.control.power.on[name] = "None";
    else status.control.power.off[name] = "None";
  }
  if (other.length > 0) status.message = other.join(";;");
  return status;
}
