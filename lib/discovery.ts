import { and, desc, eq, inArray, isNull, sql } from "drizzle-orm";
import { getClusterRow } from "./cluster.ts";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { node, nodeGroup, nodeInterface } from "./db/schema/index.ts";
import { conflict, notFound } from "./errors.ts";
import { STRICT_NAME } from "./fields.ts";
import { syncNodeWithGroup } from "./node-interfaces.ts";

/** Interface name a node provisions over when neither the node nor its group names one. */
export const DEFAULT_PROVISION_INTERFACE = "BOOTIF";

/**
 * Selects nodes, by name, that have their provisioning interface but no MAC address on it:
 * the nodes that discovery may hand to a new machine.
 */
export function freeNodesQuery(db: Orm | Transaction, groupIds?: number[]) {
  const provisionName = sql`coalesce(nullif(${node.provision_interface}, ''), nullif(${nodeGroup.provision_interface}, ''), ${DEFAULT_PROVISION_INTERFACE})`;
  const conditions = [isNull(nodeInterface.macaddress)];
  if (groupIds !== undefined) conditions.push(inArray(node.group_id, groupIds));
  return db
    .select({ id: node.id, name: node.name, interfaceId: nodeInterface.id })
    .from(node)
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .innerJoin(nodeInterface, and(eq(nodeInterface.node_id, node.id), eq(nodeInterface.interface, provisionName)))
    .where(and(...conditions))
    .orderBy(node.name)
    .$dynamic();
}

/**
 * Finds the node cabled to the switch port where a MAC address was last seen, or returns null.
 * It runs before the write transaction, because a switch query over SNMP takes seconds.
 */
export type SwitchPortLocator = (mac: string) => Promise<number | null>;

/** Discovery step that gave a MAC address its node. */
export type DiscoveryOutcome = "known" | "switchport" | "nextnode" | "ondemand" | "manual";

/** The node a discovery settled on. */
export interface DiscoveredNode {
  nodeId: number;
  name: string;
  outcome: DiscoveryOutcome;
}

async function nodeOfMac(tx: Transaction, mac: string): Promise<{ id: number; name: string } | null> {
  const [row] = await tx
    .select({ id: node.id, name: node.name })
    .from(nodeInterface)
    .innerJoin(node, eq(node.id, nodeInterface.node_id))
    .where(eq(nodeInterface.macaddress, mac));
  return row ?? null;
}

async function provisionInterfaceName(tx: Transaction, nodeId: number): Promise<string> {
  const [row] = await tx
    .select({ name: sql<string>`coalesce(nullif(${node.provision_interface}, ''), nullif(${nodeGroup.provision_interface}, ''), ${DEFAULT_PROVISION_INTERFACE})` })
    .from(node)
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .where(eq(node.id, nodeId));
  if (!row) throw notFound(`Node with id ${nodeId} does not exist`);
  return row.name;
}

/**
 * Puts `mac` on the node's provisioning interface, creating the interface (without an address)
 * when the node lacks it. The MAC address must not be on any other interface: callers check or
 * clear that first in the same transaction.
 */
async function storeProvisionMac(tx: Transaction, nodeId: number, mac: string): Promise<void> {
  const interfaceName = await provisionInterfaceName(tx, nodeId);
  const [existing] = await tx
    .select({ id: nodeInterface.id })
    .from(nodeInterface)
    .where(and(eq(nodeInterface.node_id, nodeId), eq(nodeInterface.interface, interfaceName)));
  if (existing) {
    await tx.update(nodeInterface).set({ macaddress: mac }).where(eq(nodeInterface.id, existing.id));
  } else {
    await tx.insert(nodeInterface).values({ node_id: nodeId, interface: interfaceName, macaddress: mac });
  }
}

/** Turns a group name into the stem of a node name: lower case, other characters as '-'. */
function nameStem(groupName: string): string {
  const stem = groupName.toLowerCase().replace(/[^a-z0-9.-]+/g, "-").replace(/^[^a-z0-9]+/, "");
  return stem === "" ? "node" : stem;
}

async function nodeNameTaken(tx: Transaction, name: string): Promise<boolean> {
  const [row] = await tx.select({ id: node.id }).from(node).where(eq(node.name, name));
  return row !== undefined;
}

/**
 * Picks the name of a node created on demand. With `macAsHost` it is the MAC address without
 * separators. Otherwise the highest node name counts up by one, keeping its zero padding
 * (`node004` becomes `node005`). A highest name without a trailing number gets `001`
 * appended, and without any node the name is the group name followed by `001`.
 */
export async function nextNodeName(tx: Transaction, groupName: string, mac: string, macAsHost: boolean): Promise<string> {
  if (macAsHost) {
    const name = mac.replaceAll(":", "");
    if (await nodeNameTaken(tx, name)) throw conflict(`Cannot create node "${name}" for MAC address ${mac}: a node of that name already exists`);
    return name;
  }
  const [highest] = await tx.select({ name: node.name }).from(node).orderBy(desc(node.name)).limit(1);
  let prefix = highest ? highest.name : nameStem(groupName);
  let number = 0;
  let width = 3;
  const match = highest ? /^(.*?)(\d+)$/.exec(highest.name) : null;
  if (match) {
    prefix = match[1];
    number = Number(match[2]);
    width = match[2].length;
  }
  for (;;) {
    number += 1;
    const name = `${prefix}${String(number).padStart(width, "0")}`;
    if (name.length > 63 || !STRICT_NAME.test(name)) throw conflict(`Cannot create a node for MAC address ${mac}: the next name "${name}" is not a valid node name`);
    if (!(await nodeNameTaken(tx, name))) return name;
  }
}

/** Creates a node in the group with its group's interfaces and the MAC address on its provisioning interface. */
async function createNodeForMac(tx: Transaction, group: { id: number; name: string }, mac: string, macAsHost: boolean, now: number) {
  const name = await nextNodeName(tx, group.name, mac, macAsHost);
  const [created] = await tx.insert(node).values({ name, group_id: group.id }).returning({ id: node.id });
  await syncNodeWithGroup(tx, created.id, now);
  await storeProvisionMac(tx, created.id, mac);
  return { nodeId: created.id, name };
}

/**
 * Returns the group a node created on demand joins: the only group when there is one, otherwise
 * the group of the node with the highest name, whose name the new node continues.
 */
async function defaultDiscoveryGroup(tx: Transaction): Promise<{ id: number; name: string } | null> {
  const groups = await tx.select({ id: nodeGroup.id, name: nodeGroup.name }).from(nodeGroup).limit(2);
  if (groups.length === 1) return groups[0];
  const [highest] = await tx
    .select({ id: nodeGroup.id, name: nodeGroup.name })
    .from(node)
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .orderBy(desc(node.name))
    .limit(1);
  return highest ?? null;
}

/**
 * Gives an unknown MAC address a node, or returns null when the cluster settings allow none.
 * The first step is the node on the switch port where the MAC was seen, when `locateSwitchPort`
 * is given. With cluster `nextnode_discover` the next is the first node by name whose
 * provisioning interface has no MAC address. With `createnode_ondemand` as well, the last is a
 * new node in the default group. Claiming and storing happen in one write transaction that looks
 * the MAC up again first. So concurrent requests in this process never claim the same node, and
 * a repeated request gets the same node.
 */
export async function discoverNode(db: Database, mac: string, now: number, locateSwitchPort?: SwitchPortLocator): Promise<DiscoveredNode | null> {
  const portNodeId = locateSwitchPort ? await locateSwitchPort(mac) : null;
  // Unknown machines ask again every few seconds: without anything to claim, skip the write transaction.
  if (portNodeId === null && !(await getClusterRow(db.orm)).nextnode_discover) return null;

  return db.write(async (tx) => {
    const known = await nodeOfMac(tx, mac);
    if (known) return { nodeId: known.id, name: known.name, outcome: "known" };

    if (portNodeId !== null) {
      const [portNode] = await tx.select({ id: node.id, name: node.name }).from(node).where(eq(node.id, portNodeId));
      if (portNode) {
        await storeProvisionMac(tx, portNode.id, mac);
        return { nodeId: portNode.id, name: portNode.name, outcome: "switchport" };
      }
    }

    const settings = await getClusterRow(tx);
    if (!settings.nextnode_discover) return null;
    const [free] = await freeNodesQuery(tx).limit(1);
    if (free) {
      await tx.update(nodeInterface).set({ macaddress: mac }).where(eq(nodeInterface.id, free.interfaceId));
      return { nodeId: free.id, name: free.name, outcome: "nextnode" };
    }
    if (!settings.createnode_ondemand) return null;
    const group = await defaultDiscoveryGroup(tx);
    if (!group) return null;
    const created = await createNodeForMac(tx, group, mac, settings.createnode_macashost, now);
    return { ...created, outcome: "ondemand" };
  });
}

/**
 * Hands a MAC address to a node of `groupName`, as an operator does from the boot menu. A node
 * of the group that already has the MAC keeps it. Otherwise the MAC leaves every other interface
 * and goes to the first node of the group, by name, whose provisioning interface has no MAC
 * address, or else to a new node of the group. Cluster `nextnode_discover` does not apply.
 */
export async function claimGroupNode(db: Database, groupName: string, mac: string, now: number): Promise<DiscoveredNode> {
  return db.write(async (tx) => {
    const [group] = await tx.select({ id: nodeGroup.id, name: nodeGroup.name }).from(nodeGroup).where(eq(nodeGroup.name, groupName));
    if (!group) throw notFound(`Group "${groupName}" does not exist`);

    const [owner] = await tx
      .select({ id: node.id, name: node.name, groupId: node.group_id })
      .from(nodeInterface)
      .innerJoin(node, eq(node.id, nodeInterface.node_id))
      .where(eq(nodeInterface.macaddress, mac));
    if (owner && owner.groupId === group.id) return { nodeId: owner.id, name: owner.name, outcome: "known" };
    if (owner) await tx.update(nodeInterface).set({ macaddress: null }).where(eq(nodeInterface.macaddress, mac));

    const [free] = await freeNodesQuery(tx, [group.id]).limit(1);
    if (free) {
      await tx.update(nodeInterface).set({ macaddress: mac }).where(eq(nodeInterface.id, free.interfaceId));
      return { nodeId: free.id, name: free.name, outcome: "nextnode" };
    }
    const settings = await getClusterRow(tx);
    const created = await createNodeForMac(tx, group, mac, settings.createnode_macashost, now);
    return { ...created, outcome: "ondemand" };
  });
}

/**
 * Puts a MAC address on the provisioning interface of node `nodeName`, as an operator does
 * from the boot menu, and takes it off any other interface. Throws `notFound` for an unknown node.
 */
export async function assignMacToNode(db: Database, nodeName: string, mac: string): Promise<DiscoveredNode> {
  return db.write(async (tx) => {
    const [target] = await tx.select({ id: node.id, name: node.name }).from(node).where(eq(node.name, nodeName));
    if (!target) throw notFound(`Node "${nodeName}" does not exist`);
    const interfaceName = await provisionInterfaceName(tx, target.id);
    const [current] = await tx
      .select({ nodeId: nodeInterface.node_id, interface: nodeInterface.interface })
      .from(nodeInterface)
      .where(eq(nodeInterface.macaddress, mac));
    if (current && current.nodeId === target.id && current.interface === interfaceName) {
      return { nodeId: target.id, name: target.name, outcome: "known" };
    }
    // The node's previous MAC address on that interface is replaced, as the operator asked.
    await tx.update(nodeInterface).set({ macaddress: null }).where(eq(nodeInterface.macaddress, mac));
    await storeProvisionMac(tx, target.id, mac);
    return { nodeId: target.id, name: target.name, outcome: "manual" };
  });
}
