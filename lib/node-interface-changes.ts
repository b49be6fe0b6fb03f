import { and, eq, ne } from "drizzle-orm";
import * as v from "valibot";
import type { Database, Transaction } from "./db/database.ts";
import { ipAddress, network, node, nodeInterface } from "./db/schema/index.ts";
import { conflict, invalid, notFound } from "./errors.ts";
import { flag, integer, ipOrEmpty, multilineText } from "./fields.ts";
import { cidrContains, formatCidr, type IpFamily, ipFamily } from "./ip.ts";
import { addressOwner, findNetwork, networkCidr, type NetworkRow } from "./ipam.ts";
import { allocateInterfaceAddress, type IpAddressRow, type NodeInterfaceRow, requireNodeId } from "./node-interfaces.ts";

/** Interface names: letters, digits, '.', ':', '_' and '-', such as `BOOTIF`, `eth0`, `bond0.100` or `ib0:1`. */
export const INTERFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9.:_-]{0,62}$/;

/** Linux bonding modes, by name or by their number 0-6. */
export const BOND_MODES = ["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb", "0", "1", "2", "3", "4", "5", "6"];

const MAC_ADDRESS = /^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$/;

const interfaceName = v.pipe(
  v.string(),
  v.check((value) => INTERFACE_NAME.test(value), (issue) => `interface name "${issue.input}" is invalid: use letters, digits, '.', ':', '_' and '-', at most 63 characters`),
);

/** A MAC address with ':' or '-' separators in any case, stored lower-case with colons; `""` clears it. */
export const macAddressOrEmpty = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value;
    if (value === "") return null;
    if (!MAC_ADDRESS.test(value)) {
      addIssue({ message: `"${value}" is not a MAC address: use six pairs of hex digits separated by ':' or '-'` });
      return NEVER;
    }
    return value.toLowerCase().replaceAll("-", ":");
  }),
);

const interfaceNameOrEmpty = v.union([v.literal(""), interfaceName], (issue) => `"${issue.input}" is not a valid interface name`);

/** One entry of an `interfaces` list in a node body; absent keys are left as they are, `""` clears. */
export const InterfaceEntry = v.strictObject({
  interface: interfaceName,
  newinterfacename: v.optional(interfaceName),
  network: v.optional(v.string()),
  ipaddress: v.optional(ipOrEmpty),
  macaddress: v.optional(macAddressOrEmpty),
  mtu: v.optional(integer(68, 65535)),
  // 0 and 4095 are reserved by IEEE 802.1Q; group interfaces use the same range.
  vlanid: v.optional(integer(1, 4094)),
  vlan_parent: v.optional(interfaceNameOrEmpty),
  bond_mode: v.optional(v.union([v.literal(""), v.picklist(BOND_MODES)], (issue) => `bond_mode "${issue.input}" is not one of ${BOND_MODES.join(", ")}`)),
  bond_slaves: v.optional(v.string()),
  options: v.optional(multilineText(65536)),
  dhcp: v.optional(flag),
  force: v.optional(flag),
});

/** A parsed interface entry. */
export type InterfaceChange = v.InferOutput<typeof InterfaceEntry>;

type Settings = Pick<NodeInterfaceRow, "macaddress" | "mtu" | "vlanid" | "vlan_parent" | "bond_mode" | "bond_slaves" | "options">;

const SETTING_KEYS = ["macaddress", "mtu", "vlanid", "vlan_parent", "bond_mode", "bond_slaves", "options"] as const;

function emptyToNull(value: string | null | undefined): string | null | undefined {
  return value === "" ? null : value;
}

/** Stores a parsed number as the text column it lives in; null stays null. */
function numberText(value: number | null): string | null {
  return value === null ? null : String(value);
}

/** Merges the entry into the stored settings and checks the VLAN and bond rules on the result. */
function mergeSettings(label: string, current: Settings | null, change: InterfaceChange): Settings {
  const merged: Settings = {
    macaddress: change.macaddress !== undefined ? change.macaddress : current?.macaddress ?? null,
    mtu: change.mtu !== undefined ? numberText(change.mtu) : current?.mtu ?? null,
    vlanid: change.vlanid !== undefined ? numberText(change.vlanid) : current?.vlanid ?? null,
    vlan_parent: change.vlan_parent !== undefined ? emptyToNull(change.vlan_parent)! : current?.vlan_parent ?? null,
    bond_mode: change.bond_mode !== undefined ? emptyToNull(change.bond_mode)! : current?.bond_mode ?? null,
    bond_slaves: change.bond_slaves !== undefined ? emptyToNull(change.bond_slaves)! : current?.bond_slaves ?? null,
    options: change.options !== undefined ? emptyToNull(change.options)! : current?.options ?? null,
  };
  // Clearing the VLAN id or the bond mode takes the settings that depend on it along.
  if (change.vlanid === null && change.vlan_parent === undefined) merged.vlan_parent = null;
  if (change.bond_mode === "" && change.bond_slaves === undefined) merged.bond_slaves = null;

  if (merged.vlan_parent !== null && merged.vlanid === null) {
    throw invalid(`Invalid request: ${label}: vlan_parent "${merged.vlan_parent}" needs a vlanid`);
  }
  if (merged.bond_slaves !== null) {
    if (merged.bond_mode === null) throw invalid(`Invalid request: ${label}: bond_slaves "${merged.bond_slaves}" needs a bond_mode`);
    const slaves = merged.bond_slaves.split(/[\s,]+/).filter((item) => item !== "");
    for (const slave of slaves) {
      if (!INTERFACE_NAME.test(slave)) throw invalid(`Invalid request: ${label}: bond_slaves entry "${slave}" is not a valid interface name`);
    }
    if (slaves.length < 2) throw invalid(`Invalid request: ${label}: bond_slaves "${merged.bond_slaves}" must name at least two interfaces`);
    if (new Set(slaves).size !== slaves.length) throw invalid(`Invalid request: ${label}: bond_slaves "${merged.bond_slaves}" names an interface twice`);
    merged.bond_slaves = slaves.join(",");
  }
  if (merged.vlan_parent !== null && merged.mtu !== null) {
    throw invalid(`Invalid request: mtu of ${label} is not allowed with vlan_parent: a VLAN interface takes the MTU of its parent`);
  }
  if (merged.bond_mode !== null && merged.vlan_parent !== null) {
    throw invalid(`Invalid request: ${label}: an interface cannot have both bond_mode and vlan_parent`);
  }
  return merged;
}

async function findInterface(tx: Transaction, nodeId: number, name: string): Promise<{ item: NodeInterfaceRow; address: IpAddressRow | null } | null> {
  const [row] = await tx
    .select({ item: nodeInterface, address: ipAddress })
    .from(nodeInterface)
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
    .where(and(eq(nodeInterface.node_id, nodeId), eq(nodeInterface.interface, name)));
  return row ?? null;
}

async function checkMacFree(tx: Transaction, mac: string, ownInterfaceId: number | null): Promise<void> {
  const [owner] = await tx
    .select({ interfaceName: nodeInterface.interface, nodeName: node.name })
    .from(nodeInterface)
    .innerJoin(node, eq(node.id, nodeInterface.node_id))
    .where(ownInterfaceId === null ? eq(nodeInterface.macaddress, mac) : and(eq(nodeInterface.macaddress, mac), ne(nodeInterface.id, ownInterfaceId)));
  if (owner) throw conflict(`MAC address ${mac} is already used by interface ${owner.interfaceName} of node "${owner.nodeName}"`);
}

async function findNetworkContaining(tx: Transaction, address: string): Promise<NetworkRow | null> {
  const family = ipFamily(address) as IpFamily;
  for (const row of await tx.select().from(network)) {
    const cidr = networkCidr(row, family);
    if (cidr !== null && cidrContains(cidr, address)) return row;
  }
  return null;
}

async function loadNetwork(tx: Transaction, id: number): Promise<NetworkRow | null> {
  const [row] = await tx.select().from(network).where(eq(network.id, id));
  return row ?? null;
}

/** Stores a fixed address on the interface, taking it from another node interface when `force` is set. */
async function assignFixedAddress(
  tx: Transaction,
  label: string,
  interfaceId: number,
  existing: IpAddressRow | null,
  net: NetworkRow,
  address: string,
  change: InterfaceChange,
): Promise<void> {
  const family = ipFamily(address) as IpFamily;
  const cidr = networkCidr(net, family);
  if (cidr === null || !cidrContains(cidr, address)) {
    const ranges = [networkCidr(net, 4), networkCidr(net, 6)].filter((item) => item !== null).map((item) => formatCidr(item!));
    throw invalid(`Invalid request: ${label}: ipaddress ${address} is outside network "${net.name}" (${ranges.join(", ") || `no IPv${family} range`})`);
  }

  const owner = await addressOwner(tx, net.id, address);
  if (owner !== null && owner.nodeInterfaceId !== interfaceId) {
    if (!change.force || owner.nodeInterfaceId === null) {
      const hint = owner.nodeInterfaceId === null ? "" : ": send force to take it over";
      throw conflict(`Address ${address} in network "${net.name}" is already used by ${owner.description}${hint}`);
    }
    const column = family === 4 ? { ipaddress: null } : { ipaddress_ipv6: null };
    await tx.update(ipAddress).set(column).where(eq(ipAddress.node_interface_id, owner.nodeInterfaceId));
  }

  const familyColumn = family === 4 ? { ipaddress: address } : { ipaddress_ipv6: address };
  if (existing !== null && existing.network_id === net.id) {
    await tx.update(ipAddress).set({ ...familyColumn, ...(change.dhcp != null ? { dhcp: change.dhcp } : {}) }).where(eq(ipAddress.id, existing.id));
    return;
  }
  if (existing !== null) await tx.delete(ipAddress).where(eq(ipAddress.id, existing.id));
  await tx.insert(ipAddress).values({ network_id: net.id, node_interface_id: interfaceId, dhcp: change.dhcp ?? false, ...familyColumn });
}

/** Applies the network, ipaddress and dhcp keys of one entry to an interface's address row. */
async function applyAddressing(tx: Transaction, label: string, interfaceId: number, existing: IpAddressRow | null, change: InterfaceChange, now: number): Promise<void> {
  if (change.network === "") {
    if (change.ipaddress) throw invalid(`Invalid request: ${label}: ipaddress ${change.ipaddress} needs a network, but network is being cleared`);
    if (existing !== null) await tx.delete(ipAddress).where(eq(ipAddress.id, existing.id));
    return;
  }

  let net: NetworkRow | null = null;
  if (change.network !== undefined) {
    net = await findNetwork(tx, change.network);
    if (net === null) throw invalid(`Invalid request: ${label}: network "${change.network}" does not exist`);
  } else if (existing !== null) {
    net = await loadNetwork(tx, existing.network_id);
  }

  if (change.ipaddress) {
    net ??= await findNetworkContaining(tx, change.ipaddress);
    if (net === null) throw invalid(`Invalid request: ${label}: ipaddress ${change.ipaddress} is in no known network: send network as well`);
    await assignFixedAddress(tx, label, interfaceId, existing, net, change.ipaddress, change);
  } else if (change.ipaddress === null) {
    if (existing !== null) {
      await tx
        .update(ipAddress)
        .set({ ipaddress: null, ipaddress_ipv6: null, network_id: net?.id ?? existing.network_id, ...(change.dhcp != null ? { dhcp: change.dhcp } : {}) })
        .where(eq(ipAddress.id, existing.id));
    } else if (net !== null) {
      await tx.insert(ipAddress).values({ network_id: net.id, node_interface_id: interfaceId, dhcp: change.dhcp ?? false });
    }
  } else if (existing !== null && net !== null && existing.network_id === net.id) {
    if (change.dhcp != null) await tx.update(ipAddress).set({ dhcp: change.dhcp }).where(eq(ipAddress.id, existing.id));
  } else if (net !== null) {
    await allocateInterfaceAddress(tx, interfaceId, net, change.dhcp ?? false, now, label, existing === null);
  } else {
    throw invalid(`Invalid request: ${label}: has no network: send network to set dhcp`);
  }

  const [stored] = await tx.select().from(ipAddress).where(eq(ipAddress.node_interface_id, interfaceId));
  if (change.dhcp === false && stored && stored.ipaddress === null && stored.ipaddress_ipv6 === null) {
    throw invalid(`Invalid request: ${label}: dhcp cannot be turned off while the interface has no IP address`);
  }
}

/**
 * Applies interface entries to a node in order, inside the caller's transaction: rename, settings
 * (MAC, MTU, VLAN, bond, options) and addressing. A new interface needs a network or an
 * ipaddress. The first failing entry throws, so the caller's transaction rolls back all of them.
 */
export async function applyInterfaceChanges(tx: Transaction, nodeId: number, nodeName: string, changes: InterfaceChange[], now: number): Promise<void> {
  for (const change of changes) {
    let label = `interface "${change.interface}" of node "${nodeName}"`;
    let current = await findInterface(tx, nodeId, change.interface);

    if (change.newinterfacename !== undefined) {
      if (current === null) throw notFound(`Node "${nodeName}" has no interface "${change.interface}" to rename`);
      if (change.newinterfacename === change.interface) throw invalid(`Invalid request: ${label}: newinterfacename is the current name`);
      if (await findInterface(tx, nodeId, change.newinterfacename)) {
        throw conflict(`Node "${nodeName}" already has an interface "${change.newinterfacename}"`);
      }
      await tx.update(nodeInterface).set({ interface: change.newinterfacename }).where(eq(nodeInterface.id, current.item.id));
      label = `interface "${change.newinterfacename}" of node "${nodeName}"`;
      current = { ...current, item: { ...current.item, interface: change.newinterfacename } };
    }

    const changesSettings = SETTING_KEYS.some((key) => change[key] !== undefined);
    const changesAddressing = change.network !== undefined || change.ipaddress !== undefined || change.dhcp !== undefined;
    if (!changesSettings && !changesAddressing && change.newinterfacename === undefined) {
      throw invalid(`Invalid request: ${label}: send at least one of network, ipaddress, dhcp, macaddress, mtu, vlanid, vlan_parent, bond_mode, bond_slaves, options, newinterfacename`);
    }
    if (current === null && !(change.network || change.ipaddress)) {
      throw invalid(`Invalid request: ${label} does not exist: send network or ipaddress to create it`);
    }

    const settings = mergeSettings(label, current?.item ?? null, change);
    if (change.macaddress) await checkMacFree(tx, change.macaddress, current?.item.id ?? null);

    let interfaceId: number;
    if (current === null) {
      const [created] = await tx
        .insert(nodeInterface)
        .values({ node_id: nodeId, interface: change.interface, ...settings })
        .returning({ id: nodeInterface.id });
      interfaceId = created.id;
    } else {
      interfaceId = current.item.id;
      if (changesSettings) await tx.update(nodeInterface).set(settings).where(eq(nodeInterface.id, interfaceId));
    }

    if (changesAddressing) await applyAddressing(tx, label, interfaceId, current?.address ?? null, change, now);
  }
}

/** Applies interface entries to the node called `nodeName` in one transaction; see `applyInterfaceChanges`. */
export async function updateNodeInterfaces(db: Database, nodeName: string, changes: InterfaceChange[], now: number): Promise<void> {
  if (changes.length === 0) throw invalid(`Invalid request: interfaces for node "${nodeName}" is an empty list`);
  await db.write(async (tx) => {
    const nodeId = await requireNodeId(tx, nodeName);
    await applyInterfaceChanges(tx, nodeId, nodeName, changes, now);
  });
}

/** Returns `value` when it is a valid interface name for a URL path; throws invalid naming it otherwise. */
export function checkInterfaceName(value: string): string {
  if (!INTERFACE_NAME.test(value)) {
    throw invalid(`Invalid request: interface name "${value}" is invalid: use letters, digits, '.', ':', '_' and '-', at most 63 characters`);
  }
  return value;
}
