import { asc, eq, inArray } from "drizzle-orm";
import type { Orm } from "./db/database.ts";
import { bmcsetup, cluster, ipAddress, network, node, nodeGroup, nodeInterface, nodeStatus, osimage, osimageTag, switchDevice } from "./db/schema/index.ts";
import { notFound } from "./errors.ts";
import { formatInterface, type InterfaceAddress, type InterfaceNetwork, type InterfaceSettings } from "./node-interfaces.ts";

export type NodeRow = typeof node.$inferSelect;
type GroupRow = typeof nodeGroup.$inferSelect;
type ClusterRow = typeof cluster.$inferSelect;

/** Where a resolved value came from, as the `_<field>_source` markers name it. */
export type ValueSource = "node" | "group" | "osimage" | "cluster" | "bmcsetup" | "default";

/** Built-in values of inheritable fields that neither node, group, OS image nor cluster set. */
export const NODE_DEFAULTS = {
  setupbmc: false,
  netboot: false,
  bootmenu: false,
  roles: null,
  scripts: null,
  provision_method: "http",
  provision_fallback: "http",
  provision_interface: "BOOTIF",
  kerneloptions: null,
  ipxe_kernel: "default",
} as const;

type InheritedField = keyof typeof NODE_DEFAULTS;
const INHERITED_FIELDS = Object.keys(NODE_DEFAULTS) as InheritedField[];
const SCRIPT_FIELDS = ["prescript", "partscript", "postscript"] as const;

/** Everything a node's values are resolved against; maps are keyed by id. */
export interface ResolveContext {
  groups: Map<number, GroupRow>;
  osimages: Map<number, { name: string; kerneloptions: string | null }>;
  tags: Map<number, string>;
  bmcsetups: Map<number, { name: string; unmanaged_bmc_users: string | null }>;
  switches: Map<number, string>;
  cluster: ClusterRow;
}

interface Resolved {
  value: unknown;
  source: ValueSource;
}

function isSet(value: unknown): boolean {
  return value !== null && value !== undefined && value !== "";
}

/** Resolves one inheritable field: node, then group, then OS image, then cluster, then the built-in default. */
function resolveField(field: InheritedField, row: NodeRow, group: GroupRow | undefined, image: { kerneloptions: string | null } | undefined, clusterRow: ClusterRow): Resolved {
  if (isSet(row[field])) return { value: row[field], source: "node" };
  if (group && isSet(group[field])) return { value: group[field], source: "group" };
  if (field === "kerneloptions" && image && isSet(image.kerneloptions)) return { value: image.kerneloptions, source: "osimage" };
  if ((field === "provision_method" || field === "provision_fallback") && isSet(clusterRow[field])) {
    return { value: clusterRow[field], source: "cluster" };
  }
  return { value: NODE_DEFAULTS[field], source: "default" };
}

function pythonBoolean(value: unknown): string {
  return value ? "True" : "False";
}

/** Shows an install state the way luna2-cli prints it: `install.success` becomes `Luna installer: success`. */
export function formatNodeStatus(state: string | null | undefined): string | null {
  if (!state) return null;
  return state.startsWith("install.") ? `Luna installer: ${state.slice("install.".length)}` : state;
}

/** An interface of a node as the views need it. */
export interface ViewInterface {
  item: InterfaceSettings;
  address: InterfaceAddress | null;
  net: InterfaceNetwork | null;
}

/**
 * Resolves every inheritable field of a node. With `markers` the result is the single-node shape:
 * `_<field>_source` after each resolved field, `_override`, and `netboot`/`bootmenu` as the strings
 * "True"/"False". Without, it is the list shape with JSON booleans and no source markers.
 */
export function buildNodeView(row: NodeRow, context: ResolveContext, interfaces: ViewInterface[], state: string | null, markers: boolean): Record<string, unknown> {
  const group = context.groups.get(row.group_id);
  const imageId = row.osimage_id ?? group?.osimage_id ?? null;
  const image = imageId === null ? undefined : context.osimages.get(imageId);
  const bmcId = row.bmcsetup_id ?? group?.bmcsetup_id ?? null;
  const bmc = bmcId === null ? undefined : context.bmcsetups.get(bmcId);

  const resolved = new Map<string, Resolved>();
  for (const field of INHERITED_FIELDS) resolved.set(field, resolveField(field, row, group, image, context.cluster));
  for (const field of SCRIPT_FIELDS) {
    if (isSet(row[field])) resolved.set(field, { value: row[field], source: "node" });
    else if (group && isSet(group[field])) resolved.set(field, { value: group[field], source: "group" });
    else resolved.set(field, { value: "", source: "default" });
  }
  const link = (own: number | null, inherited: number | null | undefined, names: Map<number, string | { name: string }>, fallback: string | null): Resolved => {
    const nameOf = (id: number) => {
      const entry = names.get(id);
      return typeof entry === "string" ? entry : entry?.name ?? null;
    };
    if (own !== null) return { value: nameOf(own), source: "node" };
    if (inherited !== null && inherited !== undefined) return { value: nameOf(inherited), source: "group" };
    return { value: fallback, source: "default" };
  };
  resolved.set("osimage", link(row.osimage_id, group?.osimage_id, context.osimages, null));
  resolved.set("bmcsetup", link(row.bmcsetup_id, group?.bmcsetup_id, context.bmcsetups, null));
  resolved.set("osimagetag", link(row.osimagetag_id, group?.osimagetag_id, context.tags, "default"));
  if (isSet(row.unmanaged_bmc_users)) resolved.set("unmanaged_bmc_users", { value: row.unmanaged_bmc_users, source: "node" });
  else if (group && isSet(group.unmanaged_bmc_users)) resolved.set("unmanaged_bmc_users", { value: group.unmanaged_bmc_users, source: "group" });
  else if (bmc && isSet(bmc.unmanaged_bmc_users)) resolved.set("unmanaged_bmc_users", { value: bmc.unmanaged_bmc_users, source: "bmcsetup" });
  else resolved.set("unmanaged_bmc_users", { value: null, source: "default" });

  const override = [...resolved.values()].some((item) => item.source === "node");
  const value = (field: string) => resolved.get(field)!.value;
  const booleanText = (field: string) => (markers ? pythonBoolean(value(field)) : Boolean(value(field)));

  const provisionInterface = String(value("provision_interface"));
  const provision = interfaces.find((entry) => entry.item.interface === provisionInterface);
  const hostname = provision?.net ? `${row.name}.${provision.net.name}` : row.name;

  const view: Record<string, unknown> = {
    name: row.name,
    kerneloptions: value("kerneloptions"),
    ipxe_kernel: value("ipxe_kernel"),
    switchport: row.switchport,
    service: row.service,
    setupbmc: Boolean(value("setupbmc")),
    status: formatNodeStatus(state),
    comment: row.comment,
    roles: value("roles"),
    scripts: value("scripts"),
    vendor: row.vendor,
    assettag: row.assettag,
    prescript: value("prescript"),
    partscript: value("partscript"),
    postscript: value("postscript"),
    netboot: booleanText("netboot"),
    bootmenu: booleanText("bootmenu"),
    provision_interface: value("provision_interface"),
    provision_method: value("provision_method"),
    provision_fallback: value("provision_fallback"),
    tpm_uuid: row.tpm_uuid,
    tpm_pubkey: row.tpm_pubkey,
    tpm_sha256: row.tpm_sha256,
    unmanaged_bmc_users: value("unmanaged_bmc_users"),
    group: group?.name ?? "!!Invalid!!",
    _override: override,
    osimage: value("osimage"),
    bmcsetup: value("bmcsetup"),
    osimagetag: value("osimagetag"),
    switch: row.switch_id === null ? null : context.switches.get(row.switch_id) ?? "!!Invalid!!",
  };
  if (markers) {
    // Every marker sits after its field: luna2-cli looks the field up by the marker's name.
    for (const field of ["osimage", "bmcsetup", "unmanaged_bmc_users", "osimagetag", ...INHERITED_FIELDS, ...SCRIPT_FIELDS]) {
      view[`_${field}_source`] = resolved.get(field)!.source;
    }
  } else {
    view.tpm_present = isSet(row.tpm_sha256);
  }
  view.hostname = hostname;
  view.interfaces = interfaces.map((entry) => formatInterface(entry.item, entry.address, entry.net));
  return view;
}

/** Loads the lookup tables a node view resolves against; each is one query over a small table. */
async function loadContext(db: Orm, groupIds?: number[]): Promise<ResolveContext> {
  const [groups, images, tags, bmcs, switches, [clusterRow]] = await Promise.all([
    groupIds ? db.select().from(nodeGroup).where(inArray(nodeGroup.id, groupIds)) : db.select().from(nodeGroup),
    db.select({ id: osimage.id, name: osimage.name, kerneloptions: osimage.kerneloptions }).from(osimage),
    db.select({ id: osimageTag.id, name: osimageTag.name }).from(osimageTag),
    db.select({ id: bmcsetup.id, name: bmcsetup.name, unmanaged_bmc_users: bmcsetup.unmanaged_bmc_users }).from(bmcsetup),
    db.select({ id: switchDevice.id, name: switchDevice.name }).from(switchDevice),
    db.select().from(cluster).where(eq(cluster.id, 1)),
  ]);
  if (!clusterRow) throw notFound("No cluster available: the database has not been bootstrapped");
  return {
    groups: new Map(groups.map((item) => [item.id, item])),
    osimages: new Map(images.map((item) => [item.id, item])),
    tags: new Map(tags.map((item) => [item.id, item.name])),
    bmcsetups: new Map(bmcs.map((item) => [item.id, item])),
    switches: new Map(switches.map((item) => [item.id, item.name])),
    cluster: clusterRow,
  };
}

const interfaceColumns = {
  nodeId: nodeInterface.node_id,
  interface: nodeInterface.interface,
  macaddress: nodeInterface.macaddress,
  mtu: nodeInterface.mtu,
  vlanid: nodeInterface.vlanid,
  vlan_parent: nodeInterface.vlan_parent,
  bond_mode: nodeInterface.bond_mode,
  bond_slaves: nodeInterface.bond_slaves,
  options: nodeInterface.options,
  ipaddress: ipAddress.ipaddress,
  ipaddress_ipv6: ipAddress.ipaddress_ipv6,
  dhcp: ipAddress.dhcp,
  networkId: ipAddress.network_id,
};

type InterfaceRow = { [K in keyof typeof interfaceColumns]: (typeof interfaceColumns)[K]["_"]["data"] | null } & { nodeId: number; interface: string };

function toViewInterface(row: InterfaceRow, networks: Map<number, InterfaceNetwork>): ViewInterface {
  const net = row.networkId === null ? null : networks.get(row.networkId) ?? null;
  const address = row.networkId === null ? null : { ipaddress: row.ipaddress, ipaddress_ipv6: row.ipaddress_ipv6, dhcp: Boolean(row.dhcp) };
  return { item: row as InterfaceSettings, address, net };
}

async function loadNetworks(db: Orm): Promise<Map<number, InterfaceNetwork>> {
  const rows = await db.select({ id: network.id, name: network.name, dhcp: network.dhcp, dhcp_nodes_in_pool: network.dhcp_nodes_in_pool }).from(network);
  return new Map(rows.map((item) => [item.id, item]));
}

/**
 * Lists all nodes sorted by name in the `{"config":{"node":{...}}}` envelope, with inherited
 * values resolved but no source markers. Runs a fixed number of bulk queries whatever the node count.
 */
export async function listNodes(db: Orm): Promise<Record<string, unknown>> {
  const [rows, context, networks, statuses, interfaceRows] = await Promise.all([
    db.select().from(node).orderBy(asc(node.name)),
    loadContext(db),
    loadNetworks(db),
    db.select({ nodeId: nodeStatus.node_id, state: nodeStatus.state }).from(nodeStatus),
    db.select(interfaceColumns).from(nodeInterface).leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id)).orderBy(nodeInterface.id),
  ]);
  const stateByNode = new Map(statuses.map((item) => [item.nodeId, item.state]));
  const interfacesByNode = new Map<number, ViewInterface[]>();
  for (const item of interfaceRows as InterfaceRow[]) {
    let list = interfacesByNode.get(item.nodeId);
    if (!list) interfacesByNode.set(item.nodeId, (list = []));
    list.push(toViewInterface(item, networks));
  }
  const nodes: Record<string, unknown> = {};
  for (const row of rows) {
    nodes[row.name] = buildNodeView(row, context, interfacesByNode.get(row.id) ?? [], stateByNode.get(row.id) ?? null, false);
  }
  return { config: { node: nodes } };
}

/** Shows one node with every inherited value resolved and its `_<field>_source` and `_override` markers. */
export async function getNodeView(db: Orm, name: string): Promise<Record<string, unknown>> {
  const [row] = await db.select().from(node).where(eq(node.name, name));
  if (!row) throw notFound(`Node "${name}" does not exist`);
  const [context, networks, [status], interfaceRows] = await Promise.all([
    loadContext(db, [row.group_id]),
    loadNetworks(db),
    db.select({ state: nodeStatus.state }).from(nodeStatus).where(eq(nodeStatus.node_id, row.id)),
    db
      .select(interfaceColumns)
      .from(nodeInterface)
      .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
      .where(eq(nodeInterface.node_id, row.id))
      .orderBy(nodeInterface.id),
  ]);
  const interfaces = (interfaceRows as InterfaceRow[]).map((item) => toViewInterface(item, networks));
  return { config: { node: { [name]: buildNodeView(row, context, interfaces, status?.state ?? null, true) } } };
}

