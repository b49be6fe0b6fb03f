import { eq } from "drizzle-orm";
import type { Config } from "./config.ts";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { cluster, controller, ipAddress, network } from "./db/schema/index.ts";
import { invalid, notFound, conflict } from "./errors.ts";
import { cidrContains, type IpFamily, ipFamily } from "./ip.ts";
import { addressOwner, findNetwork, networkCidr } from "./ipam.ts";

export type ClusterRow = typeof cluster.$inferSelect;

/** Provisioning methods this daemon implements. */
export const PROVISION_METHODS = ["http"] as const;

/** Cluster fields an update may set; null clears a field. */
export interface ClusterUpdate {
  name?: string;
  user?: string | null;
  domain_search?: string | null;
  nameserver_ip?: string | null;
  forwardserver_ip?: string | null;
  ntp_server?: string | null;
  technical_contacts?: string | null;
  provision_method?: string | null;
  provision_fallback?: string | null;
  debug?: boolean | null;
  security?: boolean | null;
  packing_bootpause?: boolean | null;
  createnode_ondemand?: boolean | null;
  createnode_macashost?: boolean | null;
  nextnode_discover?: boolean | null;
  bind_legacy?: boolean | null;
  dnssec_enable?: boolean | null;
  dnssec_validation?: boolean | null;
  /** New controller addresses keyed as `controllerKey` names them; unknown keys are rejected. */
  controllerAddresses?: Record<string, string | null>;
  /** Network to move the controller addresses into. */
  controllerNetwork?: string;
}

/** Loads the cluster row; every started daemon has one. */
export async function getClusterRow(db: Orm | Transaction): Promise<ClusterRow> {
  const [row] = await db.select().from(cluster).where(eq(cluster.id, 1));
  if (!row) throw notFound("No cluster available: the database has not been bootstrapped");
  return row;
}

/** A controller with its address on the network it is reached on. */
export interface ControllerView {
  id: number;
  hostname: string;
  beacon: boolean;
  shadow: boolean;
  status: string | null;
  vendor: string | null;
  serverport: number;
  ipaddress: string | null;
  network: string | null;
}

/** Lists controllers, beacon first, each with its first IPv4 address (or IPv6 when it has none). */
export async function listControllers(db: Orm | Transaction): Promise<ControllerView[]> {
  const rows = await db
    .select({ controller, ipaddress: ipAddress.ipaddress, ipaddress_ipv6: ipAddress.ipaddress_ipv6, network: network.name })
    .from(controller)
    .leftJoin(ipAddress, eq(ipAddress.controller_id, controller.id))
    .leftJoin(network, eq(network.id, ipAddress.network_id))
    .orderBy(controller.id, ipAddress.id);
  const views = new Map<number, ControllerView>();
  for (const row of rows) {
    if (views.has(row.controller.id)) continue;
    views.set(row.controller.id, {
      ...row.controller,
      ipaddress: row.ipaddress ?? row.ipaddress_ipv6 ?? null,
      network: row.network ?? null,
    });
  }
  return [...views.values()].sort((left, right) => Number(right.beacon) - Number(left.beacon));
}

/** Builds the GET /config/cluster body in the original daemon's shape. */
export async function getClusterView(db: Orm, config: Config): Promise<Record<string, unknown>> {
  const row = await getClusterRow(db);
  const { id: _id, dns_serial: _serial, ...fields } = row;
  const view: Record<string, unknown> = { ...fields };
  if (!row.bind_legacy) view.dnssec_enable = "N/A";
  for (const item of await listControllers(db)) {
    const key = item.beacon ? "controller" : item.hostname;
    view[key] = {
      hostname: item.hostname,
      status: item.status,
      vendor: item.vendor,
      serverport: item.serverport,
      ipaddress: item.ipaddress,
      luna_config: config.file,
      ...(item.shadow ? { shadow: true } : {}),
    };
  }
  return { config: { cluster: view } };
}

/** Returns the key of a controller's address in cluster bodies: `controller` for the beacon, else its hostname with '-' as '_'. */
export function controllerKey(item: { hostname: string; beacon: boolean }): string {
  return item.beacon ? "controller" : item.hostname.replaceAll("-", "_");
}

/**
 * Applies a cluster update in one transaction: cluster columns, and controller addresses
 * checked against the network they belong to and against every other address.
 */
export async function updateCluster(db: Database, update: ClusterUpdate): Promise<void> {
  const { controllerAddresses, controllerNetwork, ...columns } = update;
  for (const key of ["provision_method", "provision_fallback"] as const) {
    const value = columns[key];
    if (value && !(PROVISION_METHODS as readonly string[]).includes(value)) {
      throw invalid(`Invalid request: ${key} "${value}" is not supported: use ${PROVISION_METHODS.join(", ")}`);
    }
  }
  if (columns.name === null || columns.name === "") throw invalid("Invalid request: name must not be empty");

  await db.write(async (tx) => {
    const flags = ["debug", "security", "packing_bootpause", "createnode_ondemand", "createnode_macashost", "nextnode_discover", "bind_legacy"] as const;
    const values: Partial<ClusterRow> = {};
    for (const [key, value] of Object.entries(columns) as [keyof ClusterRow, unknown][]) {
      if (value === undefined) continue;
      (values as Record<string, unknown>)[key] = (flags as readonly string[]).includes(key) && value === null ? false : value;
    }
    if (Object.keys(values).length > 0) await tx.update(cluster).set(values).where(eq(cluster.id, 1));
    if (Object.keys(controllerAddresses ?? {}).length > 0 || controllerNetwork) {
      await moveControllers(tx, controllerAddresses ?? {}, controllerNetwork);
    }
  });
}

async function moveControllers(tx: Transaction, byKey: Record<string, string | null>, networkName: string | undefined): Promise<void> {
  const controllers = await listControllers(tx);
  const addresses = new Map<string, string>();
  for (const [key, address] of Object.entries(byKey)) {
    const item = controllers.find((candidate) => controllerKey(candidate) === key);
    if (!item) throw invalid(`Invalid request: unknown key "${key}": not a cluster field or controller`);
    if (address === null) throw invalid(`Invalid request: controller "${item.hostname}" needs an address, not an empty value`);
    addresses.set(item.hostname, address);
  }
  const target = networkName === undefined ? null : await findNetwork(tx, networkName);
  if (networkName !== undefined && target === null) throw invalid(`Invalid request: network "${networkName}" does not exist`);

  for (const item of controllers) {
    const requested = addresses.get(item.hostname);
    if (requested === undefined && target === null) continue;
    const networkRow = target ?? (item.network ? await findNetwork(tx, item.network) : null);
    if (networkRow === null) throw invalid(`Invalid request: controller "${item.hostname}" has no network: send controller_network`);
    const address = requested ?? item.ipaddress;
    if (address === null) throw invalid(`Invalid request: controller "${item.hostname}" needs an address in network "${networkRow.name}"`);

    const family = ipFamily(address) as IpFamily;
    const cidr = networkCidr(networkRow, family);
    if (cidr === null || !cidrContains(cidr, address)) {
      throw invalid(`Invalid request: controller address ${address} is outside network "${networkRow.name}"`);
    }
    const owner = await addressOwner(tx, networkRow.id, address);
    if (owner !== null && owner.controllerId !== item.id) {
      throw conflict(`Address ${address} in network "${networkRow.name}" is already used by ${owner.description}`);
    }

    await tx.delete(ipAddress).where(eq(ipAddress.controller_id, item.id));
    await tx.insert(ipAddress).values({
      network_id: networkRow.id,
      controller_id: item.id,
      ipaddress: family === 4 ? address : null,
      ipaddress_ipv6: family === 6 ? address : null,
    });
  }
}
