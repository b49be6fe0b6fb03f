import { and, eq, inArray } from "drizzle-orm";
import type { Transaction } from "./db/database.ts";
import { groupInterface, ipAddress, network, node, nodeInterface } from "./db/schema/index.ts";
import { conflict, notFound } from "./errors.ts";
import { firstFreeAddress, type NetworkRow } from "./ipam.ts";

export type NodeInterfaceRow = typeof nodeInterface.$inferSelect;
export type IpAddressRow = typeof ipAddress.$inferSelect;

/** True when nodes in this network get no fixed address and boot from the DHCP pool instead. */
export function servesNodesFromPool(row: NetworkRow): boolean {
  return row.dhcp_nodes_in_pool;
}

/**
 * Gives a node interface a fresh address row in `net`: the lowest free IPv4 and/or IPv6,
 * or no address and dhcp=true when the network serves nodes from its DHCP pool. Replaces
 * any address row the interface had. Throws conflict when a family of the network is full.
 */
export async function allocateInterfaceAddress(
  tx: Transaction,
  nodeInterfaceId: number,
  net: NetworkRow,
  dhcp: boolean,
  now: number,
  label: string,
): Promise<void> {
  await tx.delete(ipAddress).where(eq(ipAddress.node_interface_id, nodeInterfaceId));
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
    .where(eq(groupInterface.group_id, nodeRow.group_id));
  const existing = await tx
    .select({ item: nodeInterface, address: ipAddress })
    .from(nodeInterface)
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
    .where(eq(nodeInterface.node_id, nodeId));
  const byName = new Map(existing.map((row) => [row.item.interface, row]));

  if (previousGroupId !== undefined && previousGroupId !== nodeRow.group_id) {
    const wanted = new Set(groupRows.map((row) => row.item.interface));
    const oldNames = await tx
      .select({ name: groupInterface.interface })
      .from(groupInterface)
      .where(eq(groupInterface.group_id, previousGroupId));
    const stale = oldNames
      .filter(({ name }) => !wanted.has(name) && byName.has(name))
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
      await allocateInterfaceAddress(tx, nodeInterfaceId, net, item.dhcp, now, `interface ${item.interface} of node "${nodeRow.name}"`);
    }
  }
}
