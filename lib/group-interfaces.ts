import { and, asc, eq, inArray } from "drizzle-orm";
import * as v from "valibot";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { groupInterface, ipAddress, network, node, nodeInterface } from "./db/schema/index.ts";
import { conflict, invalid, notFound } from "./errors.ts";
import { flag, integer, multilineText } from "./fields.ts";
import {
  checkInterfaceName,
  type GroupInterfaceRow,
  type GroupInterfaceView,
  type GroupRow,
  groupInterfaceView,
  INTERFACE_NAME,
  INTERFACE_NAME_MAX,
  listGroupInterfaceViews,
  requireGroup,
} from "./group-view.ts";
import { bigIntToIp, hostBounds, type IpFamily } from "./ip.ts";
import { dhcpRange, findNetwork, type NetworkRow, networkCidr, occupiedAddresses } from "./ipam.ts";
import { servesNodesFromPool } from "./node-interfaces.ts";

type Reader = Orm | Transaction;

/** Linux bonding modes by name and by number. */
export const BOND_MODES = [
  "balance-rr",
  "active-backup",
  "balance-xor",
  "broadcast",
  "802.3ad",
  "balance-tlb",
  "balance-alb",
  "0",
  "1",
  "2",
  "3",
  "4",
  "5",
  "6",
] as const;

const interfaceName = v.pipe(
  v.string(),
  v.maxLength(INTERFACE_NAME_MAX, `must be at most ${INTERFACE_NAME_MAX} characters`),
  v.regex(INTERFACE_NAME, "must be letters, digits, '.', '-', '_' and ':', starting with a letter or digit"),
);

/** An interface name, or `""` which clears the field and becomes null. */
const interfaceNameOrEmpty = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    if (dataset.value === "") return null;
    if (dataset.value.length > INTERFACE_NAME_MAX || !INTERFACE_NAME.test(dataset.value)) {
      addIssue({ message: `"${dataset.value}" is not a valid interface name` });
      return NEVER;
    }
    return dataset.value;
  }),
);

/** At least two interface names separated by commas and/or spaces, stored comma-separated. */
const bondSlaves = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const names = dataset.value.split(/[\s,]+/).filter((item) => item !== "");
    if (names.length === 0) return null;
    const bad = names.find((item) => item.length > INTERFACE_NAME_MAX || !INTERFACE_NAME.test(item));
    if (bad !== undefined) {
      addIssue({ message: `"${bad}" is not a valid interface name` });
      return NEVER;
    }
    if (names.length < 2) {
      addIssue({ message: `a bond needs at least two slave interfaces, not "${dataset.value}"` });
      return NEVER;
    }
    if (new Set(names).size !== names.length) {
      addIssue({ message: `"${dataset.value}" names an interface twice` });
      return NEVER;
    }
    return names.join(",");
  }),
);

/** Schema of one entry of a group's `interfaces` list in a request body. */
export const GroupInterfaceEntry = v.strictObject({
  interface: interfaceName,
  network: v.optional(v.pipe(v.string(), v.minLength(1, "must name a network"), v.maxLength(253, "must be at most 253 characters"))),
  mtu: v.optional(integer(68, 65535)),
  vlanid: v.optional(integer(1, 4094)),
  vlan_parent: v.optional(interfaceNameOrEmpty),
  bond_mode: v.optional(
    v.pipe(
      v.string(),
      v.check((value) => value === "" || (BOND_MODES as readonly string[]).includes(value), `must be one of ${BOND_MODES.join(", ")}`),
      v.transform((value) => (value === "" ? null : value)),
    ),
  ),
  bond_slaves: v.optional(bondSlaves),
  dhcp: v.optional(flag),
  options: v.optional(v.pipe(multilineText(65536), v.transform((value) => (value === "" ? null : value)))),
  newinterfacename: v.optional(interfaceName),
});

/** One parsed interface entry; null clears a setting. */
export type GroupInterfaceInput = v.InferOutput<typeof GroupInterfaceEntry>;

/** Settings that a group interface copies into the node interfaces of its members. */
const COPIED_SETTINGS = ["mtu", "vlanid", "vlan_parent", "bond_mode", "bond_slaves", "options"] as const;
type CopiedSetting = (typeof COPIED_SETTINGS)[number];

/** Result of applying interface entries: names created and names updated, in request order. */
export interface InterfaceChanges {
  created: string[];
  updated: string[];
}

/** Lists a group's interfaces for GET /config/group/{name}/interfaces. */
export async function getGroupInterfacesView(db: Reader, groupName: string): Promise<Record<string, unknown>> {
  const group = await requireGroup(db, groupName);
  return { config: { group: { [group.name]: { interfaces: await listGroupInterfaceViews(db, group.id) } } } };
}

/** Shows one group interface; throws not found when the group or the interface is missing. */
export async function getGroupInterfaceView(db: Reader, groupName: string, interfaceName: string): Promise<Record<string, unknown>> {
  const group = await requireGroup(db, groupName);
  checkInterfaceName(interfaceName);
  const [row] = await db
    .select({ item: groupInterface, network: network.name })
    .from(groupInterface)
    .leftJoin(network, eq(network.id, groupInterface.network_id))
    .where(and(eq(groupInterface.group_id, group.id), eq(groupInterface.interface, interfaceName)));
  if (!row) throw notFound(`Group "${group.name}" has no interface "${interfaceName}"`);
  const view: GroupInterfaceView = groupInterfaceView(row.item, row.network);
  return { config: { group: { [group.name]: { interfaces: [view] } } } };
}

/**
 * Creates, updates or renames the interfaces of a group and applies every change to the
 * group's member nodes, all in one transaction.
 */
export async function saveGroupInterfaces(db: Database, groupName: string, entries: GroupInterfaceInput[], now: number): Promise<InterfaceChanges> {
  if (entries.length === 0) throw invalid("Invalid request: interfaces must list at least one interface");
  return db.write(async (tx) => {
    const group = await requireGroup(tx, groupName);
    const changes: InterfaceChanges = { created: [], updated: [] };
    for (const entry of entries) {
      const outcome = await applyGroupInterfaceEntry(tx, group, entry, now);
      changes[outcome].push(entry.newinterfacename ?? entry.interface);
    }
    return changes;
  });
}

/**
 * Applies one interface entry to a group inside `tx`: renames first when `newinterfacename`
 * is set, then creates or updates the interface, then brings every member node in line.
 * Returns whether the interface was created or updated.
 */
export async function applyGroupInterfaceEntry(
  tx: Transaction,
  group: GroupRow,
  entry: GroupInterfaceInput,
  now: number,
): Promise<"created" | "updated"> {
  let current = await findGroupInterface(tx, group.id, entry.interface);

  if (entry.newinterfacename !== undefined) {
    if (current === null) throw notFound(`Group "${group.name}" has no interface "${entry.interface}" to rename`);
    current = await renameGroupInterface(tx, group, current, entry.newinterfacename);
  }

  let target: NetworkRow | null = null;
  if (entry.network !== undefined) {
    target = await findNetwork(tx, entry.network);
    if (target === null) throw invalid(`Invalid request: network "${entry.network}" of interface "${entry.interface}" does not exist`);
  }

  if (current === null) {
    if (target === null) {
      throw invalid(`Invalid request: network is required for the new interface "${entry.interface}" of group "${group.name}"`);
    }
    const settings = mergeSettings(null, entry);
    const [created] = await tx
      .insert(groupInterface)
      .values({ group_id: group.id, interface: entry.interface, network_id: target.id, dhcp: entry.dhcp ?? false, ...settings })
      .returning();
    await applyInterfaceToMembers(tx, group, created, target, "add", new Set(COPIED_SETTINGS), false, now);
    return "created";
  }

  const settings = mergeSettings(current, entry);
  const changed = new Set(COPIED_SETTINGS.filter((key) => settings[key] !== current[key]));
  const dhcp = entry.dhcp === undefined ? current.dhcp : (entry.dhcp ?? false);
  const networkId = target?.id ?? current.network_id;
  const [updated] = await tx
    .update(groupInterface)
    .set({ ...settings, dhcp, network_id: networkId })
    .where(eq(groupInterface.id, current.id))
    .returning();

  const dhcpChanged = dhcp !== current.dhcp;
  if (changed.size > 0 || dhcpChanged || networkId !== current.network_id) {
    const net = target ?? (networkId === null ? null : await networkById(tx, networkId));
    await applyInterfaceToMembers(tx, group, updated, net, "update", changed, dhcpChanged, now);
  }
  return "updated";
}

/**
 * Deletes a group interface and the node interfaces of that name on every member node, with
 * their addresses, in one transaction.
 */
export async function deleteGroupInterface(db: Database, groupName: string, interfaceName: string): Promise<void> {
  await db.write(async (tx) => {
    const group = await requireGroup(tx, groupName);
    checkInterfaceName(interfaceName);
    const current = await findGroupInterface(tx, group.id, interfaceName);
    if (current === null) throw notFound(`Group "${group.name}" has no interface "${interfaceName}"`);
    await removeInterfaceFromMembers(tx, group.id, interfaceName);
    await tx.delete(groupInterface).where(eq(groupInterface.id, current.id));
  });
}

async function findGroupInterface(tx: Reader, groupId: number, name: string): Promise<GroupInterfaceRow | null> {
  const [row] = await tx
    .select()
    .from(groupInterface)
    .where(and(eq(groupInterface.group_id, groupId), eq(groupInterface.interface, name)));
  return row ?? null;
}

async function networkById(tx: Transaction, id: number): Promise<NetworkRow | null> {
  const [row] = await tx.select().from(network).where(eq(network.id, id));
  return row ?? null;
}

/**
 * Merges an entry's settings over the stored ones and checks the combination. Clearing
 * `vlanid` also clears `vlan_parent`, and clearing `bond_mode` also clears `bond_slaves`.
 */
function mergeSettings(current: GroupInterfaceRow | null, entry: GroupInterfaceInput): Record<CopiedSetting, string | null> {
  const merged: Record<CopiedSetting, string | null> = {
    mtu: current?.mtu ?? null,
    vlanid: current?.vlanid ?? null,
    vlan_parent: current?.vlan_parent ?? null,
    bond_mode: current?.bond_mode ?? null,
    bond_slaves: current?.bond_slaves ?? null,
    options: current?.options ?? null,
  };
  for (const key of COPIED_SETTINGS) {
    const value = entry[key];
    if (value !== undefined) merged[key] = value === null ? null : String(value);
  }
  if (entry.vlanid === null && entry.vlan_parent === undefined) merged.vlan_parent = null;
  if (entry.bond_mode === null && entry.bond_slaves === undefined) merged.bond_slaves = null;

  const label = `interface "${entry.interface}"`;
  if (merged.vlan_parent !== null && merged.vlanid === null) {
    throw invalid(`Invalid request: vlan_parent "${merged.vlan_parent}" of ${label} requires a vlanid`);
  }
  if (merged.vlan_parent !== null && (merged.bond_mode !== null || merged.bond_slaves !== null)) {
    throw invalid(`Invalid request: ${label} cannot be both a VLAN (vlan_parent) and a bond (bond_mode, bond_slaves)`);
  }
  if (merged.vlan_parent !== null && merged.mtu !== null) {
    throw invalid(`Invalid request: mtu of ${label} is not allowed with vlan_parent: a VLAN interface takes the MTU of its parent`);
  }
  if (merged.bond_slaves !== null && merged.bond_mode === null) {
    throw invalid(`Invalid request: bond_slaves of ${label} requires a bond_mode`);
  }
  return merged;
}

async function renameGroupInterface(tx: Transaction, group: GroupRow, current: GroupInterfaceRow, newName: string): Promise<GroupInterfaceRow> {
  if (newName === current.interface) {
    throw invalid(`Invalid request: newinterfacename "${newName}" is the current name of the interface`);
  }
  if ((await findGroupInterface(tx, group.id, newName)) !== null) {
    throw conflict(`Group "${group.name}" already has an interface "${newName}"`);
  }
  const members = tx.select({ id: node.id }).from(node).where(eq(node.group_id, group.id));
  const [clash] = await tx
    .select({ name: node.name })
    .from(nodeInterface)
    .innerJoin(node, eq(node.id, nodeInterface.node_id))
    .where(and(eq(node.group_id, group.id), eq(nodeInterface.interface, newName)))
    .orderBy(asc(node.name))
    .limit(1);
  if (clash) {
    throw conflict(`Cannot rename interface "${current.interface}" of group "${group.name}" to "${newName}": node "${clash.name}" already has an interface "${newName}"`);
  }
  await tx
    .update(nodeInterface)
    .set({ interface: newName })
    .where(and(eq(nodeInterface.interface, current.interface), inArray(nodeInterface.node_id, members)));
  const [renamed] = await tx.update(groupInterface).set({ interface: newName }).where(eq(groupInterface.id, current.id)).returning();
  return renamed;
}

/** Deletes the node interfaces called `name` on every member of the group, with their addresses. */
async function removeInterfaceFromMembers(tx: Transaction, groupId: number, name: string): Promise<void> {
  const members = tx.select({ id: node.id }).from(node).where(eq(node.group_id, groupId));
  const interfaces = tx
    .select({ id: nodeInterface.id })
    .from(nodeInterface)
    .where(and(eq(nodeInterface.interface, name), inArray(nodeInterface.node_id, members)));
  // The foreign key would cascade, but deleting addresses first does not depend on it being enforced.
  await tx.delete(ipAddress).where(inArray(ipAddress.node_interface_id, interfaces));
  await tx.delete(nodeInterface).where(and(eq(nodeInterface.interface, name), inArray(nodeInterface.node_id, members)));
}

/**
 * Brings the node interface of this name on every member node in line with the group
 * interface. A member without it gets it with every setting and a new address. When a new
 * group interface is added, a member whose same-named interface already has an address in
 * `net` is left untouched. Otherwise a member with the interface gets the settings in
 * `changed`, a new address when its current one is not in `net`, and the new dhcp flag when
 * `dhcpChanged`. Addresses come from one pool per network and family, so the network is
 * scanned once however many members there are.
 */
async function applyInterfaceToMembers(
  tx: Transaction,
  group: GroupRow,
  item: GroupInterfaceRow,
  net: NetworkRow | null,
  mode: "add" | "update",
  changed: Set<CopiedSetting>,
  dhcpChanged: boolean,
  now: number,
): Promise<void> {
  const members = await tx
    .select({ id: node.id, name: node.name })
    .from(node)
    .where(eq(node.group_id, group.id))
    .orderBy(asc(node.name));
  if (members.length === 0) return;

  const existing = await tx
    .select({ item: nodeInterface, address: ipAddress })
    .from(nodeInterface)
    .innerJoin(node, eq(node.id, nodeInterface.node_id))
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
    .where(and(eq(node.group_id, group.id), eq(nodeInterface.interface, item.interface)));
  const byNode = new Map(existing.map((row) => [row.item.node_id, row]));
  const allocator = net === null ? null : new NetworkAllocator(tx, net, now);
  const settings = Object.fromEntries(COPIED_SETTINGS.map((key) => [key, item[key]])) as Record<CopiedSetting, string | null>;

  for (const member of members) {
    const current = byNode.get(member.id);
    let nodeInterfaceId: number;
    let needsAddress: boolean;
    if (current === undefined) {
      const [created] = await tx
        .insert(nodeInterface)
        .values({ node_id: member.id, interface: item.interface, ...settings })
        .returning({ id: nodeInterface.id });
      nodeInterfaceId = created.id;
      needsAddress = net !== null;
    } else if (mode === "add" && net !== null && current.address?.network_id === net.id) {
      continue;
    } else {
      nodeInterfaceId = current.item.id;
      const update = Object.fromEntries([...changed].map((key) => [key, settings[key]]));
      if (Object.keys(update).length > 0) await tx.update(nodeInterface).set(update).where(eq(nodeInterface.id, nodeInterfaceId));
      needsAddress = net !== null && current.address?.network_id !== net.id;
      if (!needsAddress && dhcpChanged && current.address !== null && net !== null && !servesNodesFromPool(net)) {
        await tx.update(ipAddress).set({ dhcp: item.dhcp }).where(eq(ipAddress.id, current.address.id));
      }
    }
    if (needsAddress && allocator !== null) {
      await allocator.assign(nodeInterfaceId, item.dhcp, `interface ${item.interface} of node "${member.name}"`);
    }
  }
}

/**
 * Hands out addresses of one network in ascending order within one transaction. The set of
 * occupied addresses is loaded once per family, and each handed-out address joins it, so
 * allocating for many nodes costs one scan of the network instead of one per node.
 */
class NetworkAllocator {
  readonly #tx: Transaction;
  readonly #net: NetworkRow;
  readonly #now: number;
  readonly #pools = new Map<IpFamily, AddressPool | null>();

  constructor(tx: Transaction, net: NetworkRow, now: number) {
    this.#tx = tx;
    this.#net = net;
    this.#now = now;
  }

  /**
   * Replaces the address row of a node interface with a new one in this network: no address
   * and dhcp on when the network serves nodes from its DHCP pool, else the next free IPv4
   * and/or IPv6. Throws conflict when a family of the network is full.
   */
  async assign(nodeInterfaceId: number, dhcp: boolean, label: string): Promise<void> {
    await this.#tx.delete(ipAddress).where(eq(ipAddress.node_interface_id, nodeInterfaceId));
    if (servesNodesFromPool(this.#net)) {
      await this.#tx.insert(ipAddress).values({ network_id: this.#net.id, node_interface_id: nodeInterfaceId, dhcp: true });
      return;
    }
    const ipv4 = await this.#take(4, label);
    const ipv6 = await this.#take(6, label);
    await this.#tx.insert(ipAddress).values({ network_id: this.#net.id, node_interface_id: nodeInterfaceId, ipaddress: ipv4, ipaddress_ipv6: ipv6, dhcp });
  }

  async #take(family: IpFamily, label: string): Promise<string | null> {
    if (!this.#pools.has(family)) this.#pools.set(family, await AddressPool.load(this.#tx, this.#net, family, this.#now));
    const pool = this.#pools.get(family)!;
    if (pool === null) return null;
    const address = pool.take();
    if (address === null) throw conflict(`Network "${this.#net.name}" has no free IPv${family} address left for ${label}`);
    return address;
  }
}

/** Free host addresses of one network and family, taken lowest first. */
class AddressPool {
  readonly #family: IpFamily;
  readonly #occupied: Set<bigint>;
  readonly #range: { first: bigint; last: bigint } | null;
  readonly #last: bigint;
  #cursor: bigint;

  private constructor(family: IpFamily, occupied: Set<bigint>, range: { first: bigint; last: bigint } | null, first: bigint, last: bigint) {
    this.#family = family;
    this.#occupied = occupied;
    this.#range = range;
    this.#cursor = first;
    this.#last = last;
  }

  /** Loads the pool, or returns null when the network has no part of this family. */
  static async load(tx: Transaction, net: NetworkRow, family: IpFamily, now: number): Promise<AddressPool | null> {
    const cidr = networkCidr(net, family);
    if (cidr === null) return null;
    const { first, last } = hostBounds(cidr);
    return new AddressPool(family, await occupiedAddresses(tx, net, family, now), dhcpRange(net, family), first, last);
  }

  /** Returns the lowest address not yet occupied or taken, or null when none is left. */
  take(): string | null {
    while (this.#cursor <= this.#last) {
      const candidate = this.#cursor;
      this.#cursor++;
      if (this.#range && candidate >= this.#range.first && candidate <= this.#range.last) {
        this.#cursor = this.#range.last + 1n;
        continue;
      }
      if (this.#occupied.has(candidate)) continue;
      this.#occupied.add(candidate);
      return bigIntToIp(candidate, this.#family);
    }
    return null;
  }
}
