import { eq } from "drizzle-orm";
import type { Orm, Transaction } from "./db/database.ts";
import { ipAddress, network, node, nodeInterface, otherDevice, switchDevice } from "./db/schema/index.ts";
import { conflict, invalid } from "./errors.ts";
import { cidrContains, formatCidr, hostBounds, type IpFamily, ipFamily, ipToBigInt } from "./ip.ts";
import { addressOwner, findNetwork, firstFreeAddress, networkCidr, type NetworkRow } from "./ipam.ts";

type Reader = Orm | Transaction;

/** The ip_address column that links an address to a switch or to another device. */
export type DeviceOwnerColumn = "switch_id" | "other_device_id";

/** A switch or other device, as the address and MAC helpers name it in messages. */
export interface DeviceRef {
  column: DeviceOwnerColumn;
  id: number;
  /** E.g. `switch "switch01"`. */
  label: string;
}

/** The address keys a device view carries when the device has an address. */
export interface DeviceAddressView {
  ipaddress: string | null;
  ipaddress_ipv6: string | null;
  network: string;
}

/** A requested address change: `ipaddress` null or `network` `""` removes the address. */
export interface DeviceAddressChange {
  ipaddress?: string | null;
  network?: string;
}

/** Loads the address of every device linked through `column`, keyed by device id. */
export async function listDeviceAddresses(db: Reader, column: DeviceOwnerColumn): Promise<Map<number, DeviceAddressView>> {
  const rows = await db
    .select({ owner: ipAddress[column], ipaddress: ipAddress.ipaddress, ipaddress_ipv6: ipAddress.ipaddress_ipv6, network: network.name })
    .from(ipAddress)
    .innerJoin(network, eq(network.id, ipAddress.network_id));
  const views = new Map<number, DeviceAddressView>();
  for (const row of rows) {
    if (row.owner === null) continue;
    views.set(row.owner, { ipaddress: row.ipaddress, ipaddress_ipv6: row.ipaddress_ipv6, network: row.network });
  }
  return views;
}

/** Finds the node interface, switch or other device that has a MAC address, or returns null. */
async function macHolder(db: Reader, mac: string): Promise<{ description: string; column: DeviceOwnerColumn | null; id: number } | null> {
  const [nodeRow] = await db
    .select({ interfaceName: nodeInterface.interface, nodeName: node.name, id: nodeInterface.id })
    .from(nodeInterface)
    .innerJoin(node, eq(node.id, nodeInterface.node_id))
    .where(eq(nodeInterface.macaddress, mac));
  if (nodeRow) return { description: `interface ${nodeRow.interfaceName} of node "${nodeRow.nodeName}"`, column: null, id: nodeRow.id };
  const [switchRow] = await db.select({ name: switchDevice.name, id: switchDevice.id }).from(switchDevice).where(eq(switchDevice.macaddress, mac));
  if (switchRow) return { description: `switch "${switchRow.name}"`, column: "switch_id", id: switchRow.id };
  const [deviceRow] = await db.select({ name: otherDevice.name, id: otherDevice.id }).from(otherDevice).where(eq(otherDevice.macaddress, mac));
  if (deviceRow) return { description: `other device "${deviceRow.name}"`, column: "other_device_id", id: deviceRow.id };
  return null;
}

/**
 * Throws 409 naming the holder when a node interface, switch or other device other than
 * `self` already has `mac`. `mac` must already be in lower-case colon form.
 */
export async function requireFreeMac(db: Reader, mac: string, self: { column: DeviceOwnerColumn; id: number } | null): Promise<void> {
  const holder = await macHolder(db, mac);
  if (holder === null) return;
  if (self !== null && holder.column === self.column && holder.id === self.id) return;
  throw conflict(`MAC address ${mac} is already used by ${holder.description}`);
}

async function networkContaining(tx: Transaction, address: string, label: string): Promise<NetworkRow> {
  const family = ipFamily(address) as IpFamily;
  const matches = (await tx.select().from(network)).filter((row) => {
    const cidr = networkCidr(row, family);
    return cidr !== null && cidrContains(cidr, address);
  });
  if (matches.length === 1) return matches[0];
  const found = matches.length === 0 ? "no network contains it" : `networks ${matches.map((row) => `"${row.name}"`).join(", ")} contain it`;
  throw invalid(`Invalid request: ipaddress ${address} for ${label}: ${found}: send network as well`);
}

function requireHostAddress(row: NetworkRow, address: string, label: string): void {
  const family = ipFamily(address) as IpFamily;
  const cidr = networkCidr(row, family);
  if (cidr === null) throw invalid(`Invalid request: network "${row.name}" has no IPv${family} range for ${label} address ${address}`);
  const { first, last } = hostBounds(cidr);
  const value = ipToBigInt(address);
  if (!cidrContains(cidr, address) || value < first || value > last) {
    throw invalid(`Invalid request: ipaddress ${address} for ${label} is not a host address of network "${row.name}" (${formatCidr(cidr)})`);
  }
}

async function currentAddress(tx: Reader, device: DeviceRef) {
  const [row] = await tx.select().from(ipAddress).where(eq(ipAddress[device.column], device.id));
  return row ?? null;
}

async function writeAddress(tx: Transaction, device: DeviceRef, target: NetworkRow, addresses: { 4: string | null; 6: string | null }): Promise<void> {
  for (const address of [addresses[4], addresses[6]]) {
    if (address === null) continue;
    requireHostAddress(target, address, device.label);
    const owner = await addressOwner(tx, target.id, address);
    if (owner !== null && owner[device.column === "switch_id" ? "switchId" : "otherDeviceId"] !== device.id) {
      throw conflict(`Address ${address} in network "${target.name}" is already used by ${owner.description}`);
    }
  }
  await tx.delete(ipAddress).where(eq(ipAddress[device.column], device.id));
  if (addresses[4] === null && addresses[6] === null) return;
  await tx.insert(ipAddress).values({ network_id: target.id, ipaddress: addresses[4], ipaddress_ipv6: addresses[6], [device.column]: device.id });
}

/**
 * Applies an address change to a device. The network is the one sent, else the device's
 * current one, else the only network that contains the sent address. Without a sent
 * address the current one is kept when it lies in the network, otherwise the lowest free
 * address is allocated. Throws 400 for an address outside the network and 409 when another
 * owner has it.
 */
export async function setDeviceAddress(tx: Transaction, device: DeviceRef, change: DeviceAddressChange, now: number): Promise<void> {
  if (change.ipaddress === undefined && change.network === undefined) return;
  const current = await currentAddress(tx, device);
  if (change.ipaddress === null || change.network === "") {
    await tx.delete(ipAddress).where(eq(ipAddress[device.column], device.id));
    return;
  }

  let target: NetworkRow;
  if (change.network !== undefined) {
    const found = await findNetwork(tx, change.network);
    if (found === null) throw invalid(`Invalid request: network "${change.network}" does not exist`);
    target = found;
  } else if (current !== null) {
    [target] = await tx.select().from(network).where(eq(network.id, current.network_id));
  } else {
    target = await networkContaining(tx, change.ipaddress!, device.label);
  }

  const sameNetwork = current !== null && current.network_id === target.id;
  const kept = { 4: sameNetwork ? current.ipaddress : null, 6: sameNetwork ? current.ipaddress_ipv6 : null };
  if (change.ipaddress !== undefined) {
    kept[ipFamily(change.ipaddress) as IpFamily] = change.ipaddress;
  } else if (!sameNetwork) {
    let family: IpFamily = current?.ipaddress === null && current?.ipaddress_ipv6 !== null ? 6 : 4;
    if (networkCidr(target, family) === null) family = family === 4 ? 6 : 4;
    const previous = family === 4 ? current?.ipaddress : current?.ipaddress_ipv6;
    const cidr = networkCidr(target, family);
    const free = previous && cidr && cidrContains(cidr, previous) ? previous : await firstFreeAddress(tx, target, family, now);
    if (free === null) throw conflict(`Network "${target.name}" has no free IPv${family} address for ${device.label}`);
    kept[family] = free;
  }
  await writeAddress(tx, device, target, kept);
}

/**
 * Gives `target` an address in the network of `source`'s address: the lowest free one of
 * each family the source has. Does nothing when the source has no address.
 */
export async function copyDeviceAddress(tx: Transaction, source: DeviceRef, target: DeviceRef, now: number): Promise<void> {
  const current = await currentAddress(tx, source);
  if (current === null) return;
  const [row] = await tx.select().from(network).where(eq(network.id, current.network_id));
  const addresses: { 4: string | null; 6: string | null } = { 4: null, 6: null };
  for (const family of [4, 6] as const) {
    if ((family === 4 ? current.ipaddress : current.ipaddress_ipv6) === null) continue;
    addresses[family] = await firstFreeAddress(tx, row, family, now);
    if (addresses[family] === null) throw conflict(`Network "${row.name}" has no free IPv${family} address for ${target.label}`);
  }
  await writeAddress(tx, target, row, addresses);
}
