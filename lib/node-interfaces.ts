import { and, eq, inArray } from "drizzle-orm";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { groupInterface, ipAddress, network, node, nodeInterface } from "./db/schema/index.ts";
import { conflict, notFound } from "./errors.ts";
import { firstFreeAddress, type NetworkRow } from "./ipam.ts";

type Reader = Orm | Transaction;

export type NodeInterfaceRow = typeof nodeInterface.$inferSelect;
export type IpAddressRow = typeof ipAddress.$inferSelect;

/** True when nodes in this network get no fixed address and boot from the DHCP pool instead. */
export function servesNodesFromPool(row: NetworkRow): boolean {
  return row.dhcp_nodes_in_pool;
}

/**
 * Gives a node interface a fresh address row in `net`: the lowest free IPv4 and/or IPv6,
 * or no address and dhcp=true when the network serves nodes from its DHCP pool. Replaces
 * any address row the interface had, unless `fresh` marks the interface as just created.
 * Throws conflict when a family of the network is full.
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
  if (servesNodesFromPool(net)) {
    await tx.insert(ipAddress).values({ network_id: net.id, node_interface_id: nodeInterfaceId, dhcp: true });
    return;
  }
  let ipv4: string | null = null;
  let ipv6: string | null = null;
  if (net.network !== null && net.subnet !== null) {
    ipv4 = await firstFreeAddress(tx, net, 4, now);
    if (ipv4 === null) throw conflict(`Network "${net.name}" has no free IPv4 address left for ${label}`);
  }
  if (net.network_ipv6 !== null && net.subnet_ipv6 !== null) {
    ipv6 = await firstFreeAddress(tx, net, 6, now);
    if (ipv6 === null) throw conflict(`Network "${net.name}" has no free IPv6 address left for ${label}`);
  }
  await tx.insert(ipAddress).values({ network_id: net.id, node_interface_id: nodeInterfaceId, ipaddress: ipv4, ipaddress_ipv6: ipv6, dhcp });
}

/**
 * Materialises the interfaces of a node's group on the node. For every group interface: creates
 * the node interface when missing (copying mtu, vlan and bond settings and options) and gives it
 * the lowest free address in the group interface's network, copying dhcp. A node interface that
 * already has an address in that network is left untouched. With `previousGroupId`, node
 * interfaces named like an interface of the old group that the new group lacks are deleted.
 */
export async function syncNodeWithGroup(tx: Transaction, nodeId: number, now: number, previousGroupId?: number): Promise<void> {
  const [nodeRow] = await tx.select({ name: node.name, group_id: node.group_id }).from(node).where(eq(node.id, nodeId));
  if (!nodeRow) throw notFound(`Node with id ${nodeId} not present in database`);

  const groupRows = await tx
    .select({ item: groupInterface, net: network })
    .from(groupInterface)
    .leftJoin(network, eq(network.id, groupInterface.network_id))
    .where(eq(groupInterface.group_id, nodeRow.group_id))
    .orderBy(groupInterface.id);
  const existing = await tx
    .select({ item: nodeInterface, address: ipAddress })
    .from(nodeInterface)
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
    .where(eq(nodeInterface.node_id, nodeId));
  const byName = new Map(existing.map((row) => [row.item.interface, row]));

  if (previousGroupId !== undefined && previousGroupId !== nodeRow.group_id) {
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

  for (const { item, net } of groupRows) {
    const current = byName.get(item.interface);
    if (current && net && current.address?.network_id === net.id) continue;
    const copied = {
      mtu: item.mtu,
      vlanid: item.vlanid,
      vlan_parent: item.vlan_parent,
      bond_mode: item.bond_mode,
      bond_slaves: item.bond_slaves,
      options: item.options,
    };
    let nodeInterfaceId: number;
    const fresh = !current;
    if (current) {
      nodeInterfaceId = current.item.id;
      // An interface without a network in the group keeps whatever address the node gave it.
      if (!net) continue;
      await tx.update(nodeInterface).set(copied).where(eq(nodeInterface.id, nodeInterfaceId));
    } else {
      const [created] = await tx
        .insert(nodeInterface)
        .values({ node_id: nodeId, interface: item.interface, ...copied })
        .returning({ id: nodeInterface.id });
      nodeInterfaceId = created.id;
    }
    if (net) {
      await allocateInterfaceAddress(tx, nodeInterfaceId, net, item.dhcp, now, `interface ${item.interface} of node "${nodeRow.name}"`, fresh);
    }
  }
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
