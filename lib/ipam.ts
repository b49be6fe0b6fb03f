import { and, eq, gt, isNotNull, or, sql } from "drizzle-orm";
import type { Orm, Transaction } from "./db/database.ts";
import { controller, ipAddress, network, node, nodeInterface, otherDevice, reservedIpAddress, switchDevice } from "./db/schema/index.ts";
import { bigIntToIp, type Cidr, hostBounds, type IpFamily, ipToBigInt, parseCidr } from "./ip.ts";

type Reader = Orm | Transaction;
export type NetworkRow = typeof network.$inferSelect;

/** Returns the network's IPv4 or IPv6 part as a CIDR, or null when it has none. */
export function networkCidr(row: NetworkRow, family: IpFamily): Cidr | null {
  const base = family === 4 ? row.network : row.network_ipv6;
  const prefix = family === 4 ? row.subnet : row.subnet_ipv6;
  if (base === null || prefix === null) return null;
  return parseCidr(`${base}/${prefix}`);
}

/** Returns the network's DHCP range for `family` as integers, or null when DHCP or the range is off. */
export function dhcpRange(row: NetworkRow, family: IpFamily): { first: bigint; last: bigint } | null {
  if (!row.dhcp || row.dhcp_nodes_only) return null;
  const begin = family === 4 ? row.dhcp_range_begin : row.dhcp_range_begin_ipv6;
  const end = family === 4 ? row.dhcp_range_end : row.dhcp_range_end_ipv6;
  if (!begin || !end) return null;
  return { first: ipToBigInt(begin), last: ipToBigInt(end) };
}

/**
 * Collects every address of `family` that allocation must skip in this network: addresses
 * held by any owner, unexpired reservations, and the gateway.
 */
export async function occupiedAddresses(db: Reader, row: NetworkRow, family: IpFamily, now: number): Promise<Set<bigint>> {
  const column = family === 4 ? ipAddress.ipaddress : ipAddress.ipaddress_ipv6;
  // One JSON text per query instead of one row object per address: at 10,000 addresses this
  // is the difference between milliseconds and hundreds of milliseconds.
  const [held] = await db
    .select({ addresses: sql<string>`json_group_array(${column})` })
    .from(ipAddress)
    .where(and(eq(ipAddress.network_id, row.id), isNotNull(column)));
  const [reserved] = await db
    .select({ addresses: sql<string>`json_group_array(${reservedIpAddress.ipaddress})` })
    .from(reservedIpAddress)
    .where(and(eq(reservedIpAddress.network_id, row.id), gt(reservedIpAddress.expires_at, now)));
  const occupied = new Set<bigint>();
  for (const address of [...JSON.parse(held.addresses) as string[], ...JSON.parse(reserved.addresses) as string[]]) {
    if (address.includes(":") === (family === 6)) occupied.add(ipToBigInt(address));
  }
  const gateway = family === 4 ? row.gateway : row.gateway_ipv6;
  if (gateway) occupied.add(ipToBigInt(gateway));
  return occupied;
}

/**
 * Returns the lowest free host address of `family` in the network, or null when it is full.
 * Free means: a host address (not network, broadcast or subnet-router), outside the DHCP
 * range, not held, not reserved and not the gateway. Call it inside the write transaction
 * that stores the result, so two callers never receive the same address.
 */
export async function firstFreeAddress(db: Reader, row: NetworkRow, family: IpFamily, now: number, skip?: Set<bigint>): Promise<string | null> {
  const cidr = networkCidr(row, family);
  if (cidr === null) return null;
  const occupied = await occupiedAddresses(db, row, family, now);
  for (const value of skip ?? []) occupied.add(value);
  const range = dhcpRange(row, family);
  const { first, last } = hostBounds(cidr);
  for (let candidate = first; candidate <= last; candidate++) {
    if (range && candidate >= range.first && candidate <= range.last) {
      candidate = range.last;
      continue;
    }
    if (!occupied.has(candidate)) return bigIntToIp(candidate, family);
  }
  return null;
}

/** Loads a network by name, or null. */
export async function findNetwork(db: Reader, name: string): Promise<NetworkRow | null> {
  const [row] = await db.select().from(network).where(eq(network.name, name));
  return row ?? null;
}

/** Owner of an address, for conflict messages. */
export interface AddressOwner {
  /** E.g. `interface BOOTIF of node "node001"` or `controller "controller"`. */
  description: string;
  nodeInterfaceId: number | null;
  controllerId: number | null;
  switchId: number | null;
  otherDeviceId: number | null;
}

/** Finds the holder of `address` in a network, or null when it is free. */
export async function addressOwner(db: Reader, networkId: number, address: string): Promise<AddressOwner | null> {
  const [row] = await selectAddresses(db).where(
    and(eq(ipAddress.network_id, networkId), or(eq(ipAddress.ipaddress, address), eq(ipAddress.ipaddress_ipv6, address))),
  );
  return row ? toOwner(row) : null;
}

/** One ip_address row of a network with its holder. */
export interface NetworkAddress extends AddressOwner {
  /** The ip_address row id. */
  id: number;
  ipaddress: string | null;
  ipaddress_ipv6: string | null;
  dhcp: boolean;
  /** Name of the holding node, controller, switch or other device. */
  device: string;
  /** Interface name when the address belongs to a node interface, else null. */
  interfaceName: string | null;
  /** Hostname of the holding controller, or null for other holders. */
  controllerHostname: string | null;
  /** True when the holding controller is the beacon. */
  beacon: boolean;
}

/** Lists every ip_address row of a network with its holder, in row id order. */
export async function listNetworkAddresses(db: Reader, networkId: number): Promise<NetworkAddress[]> {
  const rows = await selectAddresses(db).where(eq(ipAddress.network_id, networkId)).orderBy(ipAddress.id);
  return rows.map((row) => ({
    ...toOwner(row),
    id: row.id,
    ipaddress: row.ipaddress,
    ipaddress_ipv6: row.ipaddress_ipv6,
    dhcp: row.dhcp,
    device: row.nodeName ?? row.controllerName ?? row.switchName ?? row.otherDeviceName ?? "",
    interfaceName: row.interfaceName,
    controllerHostname: row.controllerName,
    beacon: row.beacon ?? false,
  }));
}

function selectAddresses(db: Reader) {
  return db
    .select({
      id: ipAddress.id,
      ipaddress: ipAddress.ipaddress,
      ipaddress_ipv6: ipAddress.ipaddress_ipv6,
      dhcp: ipAddress.dhcp,
      nodeInterfaceId: ipAddress.node_interface_id,
      controllerId: ipAddress.controller_id,
      switchId: ipAddress.switch_id,
      otherDeviceId: ipAddress.other_device_id,
      interfaceName: nodeInterface.interface,
      nodeName: node.name,
      controllerName: controller.hostname,
      beacon: controller.beacon,
      switchName: switchDevice.name,
      otherDeviceName: otherDevice.name,
    })
    .from(ipAddress)
    .leftJoin(nodeInterface, eq(nodeInterface.id, ipAddress.node_interface_id))
    .leftJoin(node, eq(node.id, nodeInterface.node_id))
    .leftJoin(controller, eq(controller.id, ipAddress.controller_id))
    .leftJoin(switchDevice, eq(switchDevice.id, ipAddress.switch_id))
    .leftJoin(otherDevice, eq(otherDevice.id, ipAddress.other_device_id));
}

type AddressJoinRow = Awaited<ReturnType<ReturnType<typeof selectAddresses>["where"]>>[number];

function toOwner(row: AddressJoinRow): AddressOwner {
  const description = row.nodeName !== null
    ? `interface ${row.interfaceName} of node "${row.nodeName}"`
    : row.controllerName !== null
      ? `controller "${row.controllerName}"`
      : row.switchName !== null
        ? `switch "${row.switchName}"`
        : `other device "${row.otherDeviceName}"`;
  return {
    description,
    nodeInterfaceId: row.nodeInterfaceId,
    controllerId: row.controllerId,
    switchId: row.switchId,
    otherDeviceId: row.otherDeviceId,
  };
}
