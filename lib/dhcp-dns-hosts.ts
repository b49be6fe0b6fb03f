import { eq, isNull, sql } from "drizzle-orm";
import type { Orm, Transaction } from "./db/database.ts";
import { cluster, controller, ipAddress, network, node, nodeGroup, nodeInterface, otherDevice, switchDevice } from "./db/schema/index.ts";
import type { NetworkRow } from "./ipam.ts";

type Reader = Orm | Transaction;
export type ClusterRow = typeof cluster.$inferSelect;

/** Interface a node boots from when neither the node nor its group names one. */
export const DEFAULT_PROVISION_INTERFACE = "BOOTIF";

/** Kind of object that owns an address. */
export type HostKind = "controller" | "node" | "switch" | "otherdev";

/** One address of one holder in one network, with the name DHCP and DNS publish for it. */
export interface AddressedHost {
  kind: HostKind;
  /** Node, switch or other device name, or controller hostname. */
  owner: string;
  /** Node interface name, or null for other holders. */
  interfaceName: string | null;
  /**
   * Host label inside the network's zone, unique there: the owner name for its main address in
   * the network, `<node>-<interface>` for a node's further interfaces, null when left out.
   */
  label: string | null;
  /** Lower-case colon form, or null. */
  macaddress: string | null;
  ipv4: string | null;
  ipv6: string | null;
  networkId: number;
  /** True for nodes whose ipxe_kernel (own value, else the group's) is "alternative". */
  alternativeIpxe: boolean;
  /** True for the beacon controller. */
  beacon: boolean;
}

/** A controller with its addresses by network id. */
export interface ControllerAddresses {
  hostname: string;
  beacon: boolean;
  serverport: number;
  ipv4ByNetwork: Map<number, string>;
  ipv6ByNetwork: Map<number, string>;
}

/** Everything DHCP and DNS generation read from the database, read in one go. */
export interface AddressBook {
  cluster: ClusterRow;
  /** All networks by id order. */
  networks: NetworkRow[];
  controllers: ControllerAddresses[];
  /** The beacon controller, or the first controller when none is marked, or null without controllers. */
  beacon: ControllerAddresses | null;
  /** Every addressed holder, controllers first, then nodes, switches and other devices, each by name. */
  hosts: AddressedHost[];
  /** Human-readable reasons for addresses or names that were left out. */
  problems: string[];
}

const KIND_ORDER: Record<HostKind, number> = { controller: 0, node: 1, switch: 2, otherdev: 3 };

/** A single DNS label or dotted name made of letters, digits and inner hyphens. */
const HOST_NAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Turns an interface name such as `BOOTIF` or `eth0.100` into a DNS label part (`bootif`, `eth0-100`). */
export function interfaceLabel(interfaceName: string): string {
  return interfaceName.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
}

/**
 * Converts a canonical dotted-quad address to a number. Faster than a full parse, which matters
 * for the tens of thousands of addresses of a large cluster.
 */
export function ipv4ToNumber(address: string): number {
  const [a, b, c, d] = address.split(".");
  return Number(a) * 16777216 + Number(b) * 65536 + Number(c) * 256 + Number(d);
}

/** True when `name` can be an owner name in a zone file and a DHCP host name. */
export function isHostName(name: string): boolean {
  return name.length <= 253 && HOST_NAME.test(name);
}

/**
 * Reads networks, controllers and every address holder (node interfaces, controllers, switches,
 * other devices) and gives each address a label unique inside its network. Pass the transaction
 * when the caller also writes (the DNS serial), so both see the same state.
 */
export async function readAddressBook(db: Reader): Promise<AddressBook> {
  const [clusterRow] = await db.select().from(cluster).where(eq(cluster.id, 1));
  if (!clusterRow) throw new Error("No cluster row: the database has not been bootstrapped");
  const networks = await db.select().from(network).orderBy(network.id);
  const groups = new Map(
    (await db.select({ id: nodeGroup.id, ipxeKernel: nodeGroup.ipxe_kernel, provisionInterface: nodeGroup.provision_interface }).from(nodeGroup))
      .map((row) => [row.id, row]),
  );
  // Node addresses are the bulk of the rows (two per node in a typical cluster), so they are read
  // as raw rows with few columns: mapping 20,000 rows through seven joins to objects took 0.6 s.
  const nodeRows = await db.values<[number, string | null, string | null, string, string | null, string, string | null, string | null, number]>(sql`
    select ${ipAddress.network_id}, ${ipAddress.ipaddress}, ${ipAddress.ipaddress_ipv6}, ${nodeInterface.interface},
      ${nodeInterface.macaddress}, ${node.name}, ${node.ipxe_kernel}, ${node.provision_interface}, ${node.group_id}
    from ${ipAddress}
    join ${nodeInterface} on ${nodeInterface.id} = ${ipAddress.node_interface_id}
    join ${node} on ${node.id} = ${nodeInterface.node_id}`);
  const otherRows = await db
    .select({
      networkId: ipAddress.network_id,
      ipv4: ipAddress.ipaddress,
      ipv6: ipAddress.ipaddress_ipv6,
      controllerId: ipAddress.controller_id,
      switchName: switchDevice.name,
      switchMac: switchDevice.macaddress,
      otherName: otherDevice.name,
      otherMac: otherDevice.macaddress,
    })
    .from(ipAddress)
    .leftJoin(switchDevice, eq(switchDevice.id, ipAddress.switch_id))
    .leftJoin(otherDevice, eq(otherDevice.id, ipAddress.other_device_id))
    .where(isNull(ipAddress.node_interface_id))
    .orderBy(ipAddress.id);

  const controllerRows = await db.select().from(controller).orderBy(controller.id);
  const controllers = new Map<number, ControllerAddresses>();
  for (const row of controllerRows) {
    controllers.set(row.id, {
      hostname: row.hostname,
      beacon: row.beacon,
      serverport: row.serverport,
      ipv4ByNetwork: new Map(),
      ipv6ByNetwork: new Map(),
    });
  }

  const hosts: AddressedHost[] = [];
  const provisionInterfaces = new Map<string, string>();
  for (let index = 0; index < nodeRows.length; index++) {
    // libSQL rows are array-like but not iterable, so the columns are read by position.
    const row = nodeRows[index];
    const [networkId, ipv4, ipv6, interfaceName, macaddress, nodeName, ipxeKernel, provisionInterface, groupId] =
      [row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8]];
    if (ipv4 === null && ipv6 === null) continue;
    const group = groups.get(groupId);
    provisionInterfaces.set(nodeName, provisionInterface || group?.provisionInterface || DEFAULT_PROVISION_INTERFACE);
    hosts.push({
      kind: "node",
      owner: nodeName,
      interfaceName,
      label: null,
      macaddress,
      ipv4,
      ipv6,
      networkId,
      alternativeIpxe: (ipxeKernel || group?.ipxeKernel || "default") === "alternative",
      beacon: false,
    });
  }
  for (const row of otherRows) {
    if (row.ipv4 === null && row.ipv6 === null) continue;
    const base = { networkId: row.networkId, ipv4: row.ipv4, ipv6: row.ipv6, label: null, interfaceName: null, alternativeIpxe: false };
    if (row.controllerId !== null) {
      const entry = controllers.get(row.controllerId)!;
      if (row.ipv4 !== null) entry.ipv4ByNetwork.set(row.networkId, row.ipv4);
      if (row.ipv6 !== null) entry.ipv6ByNetwork.set(row.networkId, row.ipv6);
      hosts.push({ ...base, kind: "controller", owner: entry.hostname, macaddress: null, beacon: entry.beacon });
    } else if (row.switchName !== null) {
      hosts.push({ ...base, kind: "switch", owner: row.switchName, macaddress: row.switchMac, beacon: false });
    } else if (row.otherName !== null) {
      hosts.push({ ...base, kind: "otherdev", owner: row.otherName, macaddress: row.otherMac, beacon: false });
    }
  }

  hosts.sort((left, right) =>
    KIND_ORDER[left.kind] - KIND_ORDER[right.kind] ||
    compareText(left.owner, right.owner) ||
    Number(right.interfaceName === provisionInterfaces.get(right.owner)) - Number(left.interfaceName === provisionInterfaces.get(left.owner)) ||
    compareText(left.interfaceName ?? "", right.interfaceName ?? ""));

  const networkNames = new Map(networks.map((row) => [row.id, row.name]));
  const problems = assignLabels(hosts, networkNames);
  const controllerList = [...controllers.values()];
  const beacon = controllerList.find((entry) => entry.beacon) ?? controllerList[0] ?? null;
  return { cluster: clusterRow, networks, controllers: controllerList, beacon, hosts, problems };
}

/**
 * Gives every host a label unique in its network. A node's first address in a network (its
 * provisioning interface when that one is there) takes the node name; further interfaces take
 * `<node>-<interface>`. A name that is not a valid host name, or one already taken in that
 * network by an earlier holder, leaves the address without a label and adds a problem line.
 */
function assignLabels(hosts: AddressedHost[], networkNames: Map<number, string>): string[] {
  const problems: string[] = [];
  const taken = new Map<number, Map<string, AddressedHost>>();
  const ownersWithName = new Set<string>();
  for (const host of hosts) {
    const ownerKey = `${host.kind}\u0000${host.owner}\u0000${host.networkId}`;
    const wanted = host.kind === "node" && ownersWithName.has(ownerKey)
      ? `${host.owner}-${interfaceLabel(host.interfaceName ?? "")}`
      : host.owner;
    const networkName = () => networkNames.get(host.networkId) ?? String(host.networkId);
    if (!isHostName(wanted)) {
      problems.push(`Left out the name of ${describeHost(host)} in network "${networkName()}": "${wanted}" is not a valid host name`);
      continue;
    }
    let names = taken.get(host.networkId);
    if (names === undefined) taken.set(host.networkId, (names = new Map()));
    const previous = names.get(wanted);
    if (previous !== undefined) {
      problems.push(`Left out the name of ${describeHost(host)} in network "${networkName()}": "${wanted}" is already used by ${describeHost(previous)}`);
      continue;
    }
    names.set(wanted, host);
    ownersWithName.add(ownerKey);
    host.label = wanted;
  }
  return problems;
}

/** Describes a holder for problem lines, e.g. `interface BMC of node "node001"`. */
export function describeHost(host: AddressedHost): string {
  switch (host.kind) {
    case "node":
      return `interface ${host.interfaceName} of node "${host.owner}"`;
    case "controller":
      return `controller "${host.owner}"`;
    case "switch":
      return `switch "${host.owner}"`;
    case "otherdev":
      return `other device "${host.owner}"`;
  }
}

function compareText(left: string, right: string): number {
  if (left < right) return -1;
  if (left > right) return 1;
  return 0;
}
