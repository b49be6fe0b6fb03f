import { eq, getTableColumns, inArray, type SQL, sql } from "drizzle-orm";
import type { AnySQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Orm } from "./db/database.ts";
import { bmcsetup, cluster, ipAddress, network, node, nodeGroup, nodeInterface, nodeStatus, osimage, osimageTag, switchDevice } from "./db/schema/index.ts";
import { notFound } from "./errors.ts";
import { formatInterface, type InterfaceAddress, type InterfaceNetwork, type InterfaceSettings } from "./node-interfaces.ts";

export type NodeRow = typeof node.$inferSelect;
type GroupRow = typeof nodeGroup.$inferSelect;
type ClusterRow = typeof cluster.$inferSelect;

/** Origin of a resolved value, as the `_<field>_source` markers name it. */
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
  /** Values resolved without the node's own, keyed by group, OS image and BMC setup ids. */
  fallbacks: Map<string, Fallbacks>;
}

interface Resolved {
  value: unknown;
  source: ValueSource;
}

function isSet(value: unknown): boolean {
  return value !== null && value !== undefined && value !== "";
}

const LINK_FIELDS = ["osimage", "bmcsetup", "osimagetag", "unmanaged_bmc_users"] as const;
const RESOLVED_FIELDS = [...LINK_FIELDS, ...INHERITED_FIELDS, ...SCRIPT_FIELDS];
type ResolvedField = (typeof RESOLVED_FIELDS)[number];
type Fallbacks = Record<ResolvedField, Resolved>;

function nameOf(names: Map<number, string | { name: string }>, id: number | null | undefined): string | null {
  if (id === null || id === undefined) return null;
  const entry = names.get(id);
  return typeof entry === "string" ? entry : entry?.name ?? null;
}

/**
 * Resolves every field as it is when the node itself sets nothing: group, then OS image, then
 * cluster, then the built-in default. Many nodes share a group, so results are cached per
 * group, image and BMC setup.
 */
function fallbacksFor(context: ResolveContext, groupId: number, imageId: number | null, bmcId: number | null): Fallbacks {
  const key = `${groupId}/${imageId}/${bmcId}`;
  const cached = context.fallbacks.get(key);
  if (cached) return cached;

  const group = context.groups.get(groupId);
  const image = imageId === null ? undefined : context.osimages.get(imageId);
  const bmc = bmcId === null ? undefined : context.bmcsetups.get(bmcId);
  const fromGroup = (value: unknown): Resolved | null => (isSet(value) ? { value, source: "group" } : null);
  const result = {} as Fallbacks;

  for (const field of INHERITED_FIELDS) {
    let resolved = fromGroup(group?.[field]);
    if (!resolved && field === "kerneloptions" && image && isSet(image.kerneloptions)) resolved = { value: image.kerneloptions, source: "osimage" };
    if (!resolved && (field === "provision_method" || field === "provision_fallback") && isSet(context.cluster[field])) {
      resolved = { value: context.cluster[field], source: "cluster" };
    }
    result[field] = resolved ?? { value: NODE_DEFAULTS[field], source: "default" };
  }
  for (const field of SCRIPT_FIELDS) result[field] = fromGroup(group?.[field]) ?? { value: "", source: "default" };
  result.osimage = fromGroup(nameOf(context.osimages, group?.osimage_id)) ?? { value: null, source: "default" };
  result.bmcsetup = fromGroup(nameOf(context.bmcsetups, group?.bmcsetup_id)) ?? { value: null, source: "default" };
  result.osimagetag = fromGroup(nameOf(context.tags, group?.osimagetag_id)) ?? { value: "default", source: "default" };
  result.unmanaged_bmc_users = fromGroup(group?.unmanaged_bmc_users)
    ?? (bmc && isSet(bmc.unmanaged_bmc_users) ? { value: bmc.unmanaged_bmc_users, source: "bmcsetup" } : { value: null, source: "default" });

  context.fallbacks.set(key, result);
  return result;
}

/** Returns the node's own value of a resolved field, with object links turned into names. */
function ownValue(field: ResolvedField, row: NodeRow, context: ResolveContext): unknown {
  switch (field) {
    case "osimage":
      return nameOf(context.osimages, row.osimage_id);
    case "bmcsetup":
      return nameOf(context.bmcsetups, row.bmcsetup_id);
    case "osimagetag":
      return nameOf(context.tags, row.osimagetag_id);
    default:
      return row[field];
  }
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
  const bmcId = row.bmcsetup_id ?? group?.bmcsetup_id ?? null;

  const fallbacks = fallbacksFor(context, row.group_id, imageId, bmcId);
  const resolved = {} as Fallbacks;
  let override = false;
  for (const field of RESOLVED_FIELDS) {
    const own = ownValue(field, row, context);
    if (isSet(own)) {
      resolved[field] = { value: own, source: "node" };
      override = true;
    } else {
      resolved[field] = fallbacks[field];
    }
  }
  const value = (field: ResolvedField) => resolved[field].value;
  const booleanText = (field: ResolvedField) => (markers ? pythonBoolean(value(field)) : Boolean(value(field)));

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
    for (const field of RESOLVED_FIELDS) view[`_${field}_source`] = resolved[field].source;
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
    fallbacks: new Map(),
  };
}

/**
 * Selects rows of `columns` as one JSON array of arrays built by SQLite. For thousands of rows
 * this is several times faster than letting the libSQL client build one row object per row.
 */
function jsonRows(columns: AnySQLiteColumn[]): SQL<string | null> {
  return sql<string | null>`json_group_array(json_array(${sql.join(columns.map((column) => sql`${column}`), sql`, `)}))`;
}

function parseJsonRows(data: string | null | undefined): unknown[][] {
  return data ? (JSON.parse(data) as unknown[][]) : [];
}

/** Orders by plain code units, as SQLite's default BINARY collation does. */
function compareNames(left: { name: string }, right: { name: string }): number {
  if (left.name < right.name) return -1;
  return left.name > right.name ? 1 : 0;
}

const NODE_COLUMNS = Object.entries(getTableColumns(node)) as [keyof NodeRow, AnySQLiteColumn][];
const BOOLEAN_NODE_COLUMNS = ["service", "setupbmc", "netboot", "bootmenu"] as const;

/** Loads all nodes sorted by name in one query that returns them as one JSON array of arrays. */
async function loadAllNodes(db: Orm): Promise<NodeRow[]> {
  const [result] = await db.select({ data: jsonRows(NODE_COLUMNS.map(([, column]) => column)) }).from(node);
  const keys = NODE_COLUMNS.map(([key]) => key);
  const booleanIndexes = keys.flatMap((key, index) => ((BOOLEAN_NODE_COLUMNS as readonly string[]).includes(key) ? [index] : []));
  const rows: NodeRow[] = [];
  for (const values of parseJsonRows(result?.data)) {
    // SQLite stores booleans as 0 and 1.
    for (const index of booleanIndexes) {
      if (values[index] !== null) values[index] = Boolean(values[index]);
    }
    const row: Record<string, unknown> = {};
    for (let index = 0; index < keys.length; index++) row[keys[index]] = values[index];
    rows.push(row as NodeRow);
  }
  return rows.sort(compareNames);
}

const INTERFACE_COLUMNS = [
  nodeInterface.id,
  nodeInterface.node_id,
  nodeInterface.interface,
  nodeInterface.macaddress,
  nodeInterface.mtu,
  nodeInterface.vlanid,
  nodeInterface.vlan_parent,
  nodeInterface.bond_mode,
  nodeInterface.bond_slaves,
  nodeInterface.options,
  ipAddress.network_id,
  ipAddress.ipaddress,
  ipAddress.ipaddress_ipv6,
  ipAddress.dhcp,
];

type InterfaceValues = [number, number, string, string | null, string | null, string | null, string | null, string | null, string | null, string | null, number | null, string | null, string | null, number | null];

/** Loads interfaces with their addresses, grouped by node id, each group in creation order. */
async function loadInterfacesByNode(db: Orm, networks: Map<number, InterfaceNetwork>, nodeId?: number): Promise<Map<number, ViewInterface[]>> {
  const query = db
    .select({ data: jsonRows(INTERFACE_COLUMNS) })
    .from(nodeInterface)
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id));
  const [result] = await (nodeId === undefined ? query : query.where(eq(nodeInterface.node_id, nodeId)));
  const rows = parseJsonRows(result?.data) as InterfaceValues[];
  rows.sort((left, right) => left[0] - right[0]);

  const byNode = new Map<number, ViewInterface[]>();
  for (const [, owner, name, macaddress, mtu, vlanid, vlan_parent, bond_mode, bond_slaves, options, networkId, ipaddress, ipaddress_ipv6, dhcp] of rows) {
    let list = byNode.get(owner);
    if (!list) byNode.set(owner, (list = []));
    list.push({
      item: { interface: name, macaddress, mtu, vlanid, vlan_parent, bond_mode, bond_slaves, options },
      address: networkId === null ? null : { ipaddress, ipaddress_ipv6, dhcp: Boolean(dhcp) },
      net: networkId === null ? null : networks.get(networkId) ?? null,
    });
  }
  return byNode;
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
  const [rows, context, networks, statuses] = await Promise.all([
    loadAllNodes(db),
    loadContext(db),
    loadNetworks(db),
    db.select({ nodeId: nodeStatus.node_id, state: nodeStatus.state }).from(nodeStatus),
  ]);
  const interfacesByNode = await loadInterfacesByNode(db, networks);
  const stateByNode = new Map(statuses.map((item) => [item.nodeId, item.state]));
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
  const [context, networks, [status]] = await Promise.all([
    loadContext(db, [row.group_id]),
    loadNetworks(db),
    db.select({ state: nodeStatus.state }).from(nodeStatus).where(eq(nodeStatus.node_id, row.id)),
  ]);
  const interfaces = (await loadInterfacesByNode(db, networks, row.id)).get(row.id) ?? [];
  return { config: { node: { [name]: buildNodeView(row, context, interfaces, status?.state ?? null, true) } } };
}
