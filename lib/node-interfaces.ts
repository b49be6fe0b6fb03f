import { and, eq, inArray } from "drizzle-orm";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { groupInterface, ipAddress, network, node, nodeInterface } from "./db/schema/index.ts";
import { conflict, notFound } from "./errors.ts";
import { type IpFamily, ipToBigInt } from "./ip.ts";
import { firstFreeAddress, type NetworkRow } from "./ipam.ts";

type Reader = Orm | Transaction;

export type NodeInterfaceRow = typeof nodeInterface.$inferSelect;
export type IpAddressRow = typeof ipAddress.$inferSelect;

/** True when nodes in this network get no fixed address and boot from the DHCP pool instead. */
export function servesNodesFromPool(row: NetworkRow): boolean {
  return row.dhcp_nodes_in_pool;
}

/** Values of a new ip_address row for a node interface. */
export type InterfaceAddressValues = typeof ipAddress.$inferInsert;

/**
 * Chooses the address row of a node interface in `net`: the lowest free IPv4 and/or IPv6, or no
 * address and dhcp=true when the network serves nodes from its DHCP pool. `pending` contains
 * addresses chosen earlier in the same transaction but not stored yet, keyed by network id and
 * family, and receives the new ones. Throws conflict when a family of the network is full.
 */
export async function chooseInterfaceAddress(
  tx: Transaction,
  nodeInterfaceId: number,
  net: NetworkRow,
  dhcp: boolean,
  now: number,
  label: string,
  pending?: Map<string, Set<bigint>>,
): Promise<InterfaceAddressValues> {
  if (servesNodesFromPool(net)) return { network_id: net.id, node_interface_id: nodeInterfaceId, dhcp: true };

  const choose = async (family: IpFamily): Promise<string> => {
    const key = `${net.id}/${family}`;
    const address = await firstFreeAddress(tx, net, family, now, pending?.get(key));
    if (address === null) throw conflict(`Network "${net.name}" has no free IPv${family} address left for ${label}`);
    if (pending) {
      if (!pending.has(key)) pending.set(key, new Set());
      pending.get(key)!.add(ipToBigInt(address));
    }
    return address;
  };
  const ipv4 = net.network !== null && net.subnet !== null ? await choose(4) : null;
  const ipv6 = net.network_ipv6 !== null && net.subnet_ipv6 !== null ? await choose(6) : null;
  return { network_id: net.id, node_interface_id: nodeInterfaceId, ipaddress: ipv4, ipaddress_ipv6: ipv6, dhcp };
}

/**
 * Gives a node interface a new address row in `net`, chosen by `chooseInterfaceAddress`.
 * Replaces any address row the interface had, unless `fresh` marks the interface as just created.
 */
export async function allocateInterfaceAddress(
  tx: Transaction,
  nodeInterfaceId: number,
  net: NetworkRow,
  dhcp: boolean,
  now: number,
  label: string,
  fresh = false,
): Promise<void> {
  if (!fresh) await tx.delete(ipAddress).where(eq(ipAddress.node_interface_id, nodeInterfaceId));
  await tx.insert(ipAddress).values(await chooseInterfaceAddress(tx, nodeInterfaceId, net, dhcp, now, label));
}

/**
 * Materialises the interfaces of a node's group on the node. For every group interface: creates
 * the node interface when missing (copying mtu, vlan and bond settings and options) and gives it
 * the lowest free address in the group interface's network, copying dhcp. A node interface that
 * already has an address in that network is left untouched. With `previousGroupId`, node
 * interfaces named like an interface of the old group that the new group lacks are deleted.
 */
export async function syncNodeWithGroup(tx: Transaction, nodeId: number, now: number, previousGroupId?: number): Promise<void> {
  const rows = await tx
    .select({ nodeName: node.name, groupId: node.group_id, item: groupInterface, net: network })
    .from(node)
    .leftJoin(groupInterface, eq(groupInterface.group_id, node.group_id))
    .leftJoin(network, eq(network.id, groupInterface.network_id))
    .where(eq(node.id, nodeId))
    .orderBy(groupInterface.id);
  if (rows.length === 0) throw notFound(`Node with id ${nodeId} does not exist`);
  const { nodeName, groupId } = rows[0];
  const groupRows = rows.filter((row) => row.item !== null) as { item: GroupInterfaceRow; net: NetworkRow | null }[];

  const existing = await tx
    .select({ item: nodeInterface, address: ipAddress })
    .from(nodeInterface)
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
    .where(eq(nodeInterface.node_id, nodeId));
  const byName = new Map(existing.map((row) => [row.item.interface, row]));

  if (previousGroupId !== undefined && previousGroupId !== groupId) {
    const newGroupNames = new Set(groupRows.map((row) => row.item.interface));
    const oldNames = await tx
      .select({ name: groupInterface.interface })
      .from(groupInterface)
      .where(eq(groupInterface.group_id, previousGroupId));
    const stale = oldNames
      .filter(({ name }) => !newGroupNames.has(name) && byName.has(name))
      .map(({ name }) => byName.get(name)!.item.id);
    if (stale.length > 0) {
      await tx.delete(nodeInterface).where(and(eq(nodeInterface.node_id, nodeId), inArray(nodeInterface.id, stale)));
    }
  }

  // Decide per group interface first, so creations and addresses go in with one statement each.
  const toCreate: { item: GroupInterfaceRow; net: NetworkRow | null }[] = [];
  const toReaddress: { id: number; item: GroupInterfaceRow; net: NetworkRow }[] = [];
  for (const { item, net } of groupRows) {
    const current = byName.get(item.interface);
    if (!current) {
      toCreate.push({ item, net });
      continue;
    }
    // An interface without a network in the group keeps whatever address the node gave it.
    if (net && current.address?.network_id !== net.id) toReaddress.push({ id: current.item.id, item, net });
  }

  for (const { id, item } of toReaddress) await tx.update(nodeInterface).set(copiedSettings(item)).where(eq(nodeInterface.id, id));
  if (toReaddress.length > 0) {
    await tx.delete(ipAddress).where(inArray(ipAddress.node_interface_id, toReaddress.map((entry) => entry.id)));
  }
  const idByName = new Map<string, number>();
  if (toCreate.length > 0) {
    const created = await tx
      .insert(nodeInterface)
      .values(toCreate.map(({ item }) => ({ node_id: nodeId, interface: item.interface, ...copiedSettings(item) })))
      .returning({ id: nodeInterface.id, name: nodeInterface.interface });
    for (const row of created) idByName.set(row.name, row.id);
  }

  const pending = new Map<string, Set<bigint>>();
  const addresses: InterfaceAddressValues[] = [];
  const needAddress = [
    ...toReaddress,
    ...toCreate.filter((entry) => entry.net !== null).map(({ item, net }) => ({ id: idByName.get(item.interface)!, item, net: net! })),
  ].sort((left, right) => left.item.id - right.item.id);
  for (const { id, item, net } of needAddress) {
    addresses.push(await chooseInterfaceAddress(tx, id, net, item.dhcp, now, `interface ${item.interface} of node "${nodeName}"`, pending));
  }
  if (addresses.length > 0) await tx.insert(ipAddress).values(addresses);
}

type GroupInterfaceRow = typeof groupInterface.$inferSelect;

function copiedSettings(item: GroupInterfaceRow) {
  return {
    mtu: item.mtu,
    vlanid: item.vlanid,
    vlan_parent: item.vlan_parent,
    bond_mode: item.bond_mode,
    bond_slaves: item.bond_slaves,
    options: item.options,
  };
}

/** The network fields an interface listing needs. */
export type InterfaceNetwork = Pick<NetworkRow, "name" | "dhcp" | "dhcp_nodes_in_pool">;

/** The address fields an interface listing needs. */
export type InterfaceAddress = Pick<IpAddressRow, "ipaddress" | "ipaddress_ipv6" | "dhcp">;

/** The interface fields an interface listing needs. */
export type InterfaceSettings = Pick<NodeInterfaceRow, "interface" | "macaddress" | "mtu" | "vlanid" | "vlan_parent" | "bond_mode" | "bond_slaves" | "options">;

/**
 * Renders one node interface as luna2-cli reads it: empty values are left out, `macaddress`
 * is always present, `dhcp` only when true, and a comment explains addresses that DHCP overrides.
 */
export function formatInterface(item: InterfaceSettings, address: InterfaceAddress | null, net: InterfaceNetwork | null): Record<string, unknown> {
  const view: Record<string, unknown> = { interface: item.interface };
  let comment: string | null = null;
  const ignored = address !== null && address.dhcp && net !== null && net.dhcp && net.dhcp_nodes_in_pool;
  if (ignored && (address.ipaddress || address.ipaddress_ipv6)) comment = "ipaddress configured but ignored using dhcp and dhcp_nodes_in_pool set";
  if (address !== null && !ignored) {
    if (address.ipaddress) view.ipaddress = address.ipaddress;
    if (address.ipaddress_ipv6) view.ipaddress_ipv6 = address.ipaddress_ipv6;
  }
  if (address?.dhcp) {
    view.dhcp = true;
    if (net !== null && !net.dhcp) comment = "dhcp configured but ignored with network having dhcp disabled";
  }
  view.macaddress = item.macaddress;
  if (net !== null) view.network = net.name;
  for (const key of ["mtu", "vlanid", "vlan_parent", "bond_mode", "bond_slaves", "options"] as const) {
    if (item[key] !== null && item[key] !== "") view[key] = item[key];
  }
  if (comment !== null) view.comment = comment;
  return view;
}

/** Returns the id of the node called `name`; throws notFound when there is none. */
export async function requireNodeId(db: Reader, name: string): Promise<number> {
  const [row] = await db.select({ id: node.id }).from(node).where(eq(node.name, name));
  if (!row) throw notFound(`Node "${name}" does not exist`);
  return row.id;
}

/** Loads a node's interfaces with address and network, in creation order. */
export async function loadNodeInterfaces(db: Reader, nodeId: number, name?: string) {
  const conditions = name === undefined ? eq(nodeInterface.node_id, nodeId) : and(eq(nodeInterface.node_id, nodeId), eq(nodeInterface.interface, name));
  return db
    .select({ item: nodeInterface, address: ipAddress, net: network })
    .from(nodeInterface)
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
    .leftJoin(network, eq(network.id, ipAddress.network_id))
    .where(conditions)
    .orderBy(nodeInterface.id);
}

/**
 * Lists the interfaces of a node that have an address row in a network, in the
 * `{"config":{"node":{name:{"interfaces":[...]}}}}` envelope. Throws notFound for an unknown
 * node or one without such interfaces.
 */
export async function listNodeInterfaces(db: Orm, nodeName: string): Promise<Record<string, unknown>> {
  const nodeId = await requireNodeId(db, nodeName);
  const rows = (await loadNodeInterfaces(db, nodeId)).filter((row) => row.net !== null);
  if (rows.length === 0) throw notFound(`Node "${nodeName}" does not have any interface configured`);
  const interfaces = rows.map((row) => formatInterface(row.item, row.address, row.net));
  return { config: { node: { [nodeName]: { interfaces } } } };
}

/** Shows one interface of a node in the same envelope as `listNodeInterfaces`. */
export async function getNodeInterface(db: Orm, nodeName: string, interfaceName: string): Promise<Record<string, unknown>> {
  const nodeId = await requireNodeId(db, nodeName);
  const [row] = await loadNodeInterfaces(db, nodeId, interfaceName);
  if (!row) throw notFound(`Node "${nodeName}" does not have interface "${interfaceName}"`);
  return { config: { node: { [nodeName]: { interfaces: [formatInterface(row.item, row.address, row.net)] } } } };
}

/** Deletes one interface of a node; its address row goes with it through the foreign key. */
export async function deleteNodeInterface(db: Database, nodeName: string, interfaceName: string): Promise<void> {
  await db.write(async (tx) => {
    const nodeId = await requireNodeId(tx, nodeName);
    const deleted = await tx
      .delete(nodeInterface)
      .where(and(eq(nodeInterface.node_id, nodeId), eq(nodeInterface.interface, interfaceName)))
      .returning({ id: nodeInterface.id });
    if (deleted.length === 0) throw notFound(`Node "${nodeName}" does not have interface "${interfaceName}"`);
  });
}
