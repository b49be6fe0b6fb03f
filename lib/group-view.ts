import { asc, eq } from "drizzle-orm";
import type { Orm, Transaction } from "./db/database.ts";
import { bmcsetup, cluster, groupInterface, network, node, nodeGroup, osimage, osimageTag } from "./db/schema/index.ts";
import { invalid, notFound } from "./errors.ts";
import { LOOSE_NAME, nameProblem } from "./fields.ts";

type Reader = Orm | Transaction;
export type GroupRow = typeof nodeGroup.$inferSelect;
export type GroupInterfaceRow = typeof groupInterface.$inferSelect;

/** Interface names: letters, digits, '.', '-', '_' and ':', e.g. `BOOTIF`, `eth0.100`, `ib0:1`. */
export const INTERFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/** Maximum length of an interface name. */
export const INTERFACE_NAME_MAX = 63;

/** Values a group shows when neither it nor anything it inherits from sets them. */
export const GROUP_DEFAULTS = {
  setupbmc: false,
  netboot: false,
  bootmenu: false,
  provision_interface: "BOOTIF",
  provision_method: "http",
  provision_fallback: "http",
  kerneloptions: null,
  ipxe_kernel: "default",
  unmanaged_bmc_users: null,
} as const;

/** Rejects a group name from a URL or body that breaks the naming rule, naming `field`. */
export function checkGroupName(value: string, field = "group name"): void {
  const problem = nameProblem(field, value, LOOSE_NAME);
  if (problem !== null) throw invalid(`Invalid request: ${problem}`);
}

/** Rejects an interface name that breaks the naming rule, naming `field`. */
export function checkInterfaceName(value: string, field = "interface"): void {
  if (value.length > INTERFACE_NAME_MAX) {
    throw invalid(`Invalid request: ${field} "${value}" is longer than ${INTERFACE_NAME_MAX} characters`);
  }
  if (!INTERFACE_NAME.test(value)) {
    throw invalid(`Invalid request: ${field} "${value}" is invalid: use letters, digits, '.', '-', '_' and ':', starting with a letter or digit`);
  }
}

/** Loads a group by name, or null. */
export async function findGroup(db: Reader, name: string): Promise<GroupRow | null> {
  const [row] = await db.select().from(nodeGroup).where(eq(nodeGroup.name, name));
  return row ?? null;
}

/** Loads a group by name after checking the name; throws not found when it does not exist. */
export async function requireGroup(db: Reader, name: string): Promise<GroupRow> {
  checkGroupName(name);
  const row = await findGroup(db, name);
  if (row === null) throw notFound(`Group "${name}" does not exist`);
  return row;
}

/** A group interface as the API shows it: empty settings left out, `dhcp` only when true. */
export type GroupInterfaceView = Record<string, string | boolean | null>;

/** Renders one group interface; `networkName` is null when its network was deleted. */
export function groupInterfaceView(row: GroupInterfaceRow, networkName: string | null): GroupInterfaceView {
  const view: GroupInterfaceView = { interface: row.interface, network: networkName };
  for (const key of ["mtu", "vlanid", "vlan_parent", "bond_mode", "bond_slaves", "options"] as const) {
    const value = row[key];
    if (value !== null && value !== "") view[key] = value;
  }
  if (row.dhcp) view.dhcp = true;
  return view;
}

/** Lists a group's interfaces in name order with their network names. */
export async function listGroupInterfaceViews(db: Reader, groupId: number): Promise<GroupInterfaceView[]> {
  const rows = await db
    .select({ item: groupInterface, network: network.name })
    .from(groupInterface)
    .leftJoin(network, eq(network.id, groupInterface.network_id))
    .where(eq(groupInterface.group_id, groupId))
    .orderBy(asc(groupInterface.interface));
  return rows.map((row) => groupInterfaceView(row.item, row.network));
}

/** Names of the nodes in a group, sorted. */
export async function listGroupMembers(db: Reader, name: string): Promise<string[]> {
  const group = await requireGroup(db, name);
  const rows = await db.select({ name: node.name }).from(node).where(eq(node.group_id, group.id)).orderBy(asc(node.name));
  return rows.map((row) => row.name);
}

/** Origin of a shown value, as the `_<key>_source` markers name it. */
type Source = "group" | "osimage" | "bmcsetup" | "cluster" | "default";

/** Lookup tables shared by every group view of one request. */
interface ViewContext {
  clusterRow: { provision_method: string | null; provision_fallback: string | null } | null;
  osimages: Map<number, { name: string; kerneloptions: string | null }>;
  bmcsetups: Map<number, { name: string; unmanaged_bmc_users: string | null }>;
  tags: Map<number, string>;
  interfaces: Map<number, GroupInterfaceView[]>;
}

async function loadViewContext(db: Reader, groupId?: number): Promise<ViewContext> {
  const [clusterRow] = await db
    .select({ provision_method: cluster.provision_method, provision_fallback: cluster.provision_fallback })
    .from(cluster)
    .where(eq(cluster.id, 1));
  const images = await db.select({ id: osimage.id, name: osimage.name, kerneloptions: osimage.kerneloptions }).from(osimage);
  const setups = await db.select({ id: bmcsetup.id, name: bmcsetup.name, unmanaged_bmc_users: bmcsetup.unmanaged_bmc_users }).from(bmcsetup);
  const tags = await db.select({ id: osimageTag.id, name: osimageTag.name }).from(osimageTag);
  const interfaceQuery = db
    .select({ item: groupInterface, network: network.name })
    .from(groupInterface)
    .leftJoin(network, eq(network.id, groupInterface.network_id))
    .orderBy(asc(groupInterface.interface));
  const interfaceRows = groupId === undefined ? await interfaceQuery : await interfaceQuery.where(eq(groupInterface.group_id, groupId));

  const interfaces = new Map<number, GroupInterfaceView[]>();
  for (const row of interfaceRows) {
    const list = interfaces.get(row.item.group_id) ?? [];
    list.push(groupInterfaceView(row.item, row.network));
    interfaces.set(row.item.group_id, list);
  }
  return {
    clusterRow: clusterRow ?? null,
    osimages: new Map(images.map((row) => [row.id, row])),
    bmcsetups: new Map(setups.map((row) => [row.id, row])),
    tags: new Map(tags.map((row) => [row.id, row.name])),
    interfaces,
  };
}

function present(value: unknown): boolean {
  return value !== null && value !== undefined && value !== "";
}

/**
 * Builds one group's view with inherited values resolved. With `markers` it is the single-group
 * shape: a `_<key>_source` marker for each resolved key after the plain keys, `_override`, and
 * the flags setupbmc, netboot and bootmenu as the strings "True"/"False" that the original
 * daemon sends there. luna2-cli needs the plain key for every marker, so each marker added
 * here has its key in the view. Without `markers` it is the list shape with JSON booleans.
 */
function buildGroupView(row: GroupRow, context: ViewContext, markers: boolean): Record<string, unknown> {
  const image = row.osimage_id === null ? undefined : context.osimages.get(row.osimage_id);
  const setup = row.bmcsetup_id === null ? undefined : context.bmcsetups.get(row.bmcsetup_id);
  const sources: Record<string, Source> = {};
  let override = false;

  function resolve(key: keyof typeof GROUP_DEFAULTS, inherited: [Source, unknown][] = [], countsAsOverride = false): unknown {
    const own = row[key];
    if (present(own)) {
      sources[key] = "group";
      if (countsAsOverride) override = true;
      return own;
    }
    for (const [source, value] of inherited) {
      if (present(value)) {
        sources[key] = source;
        return value;
      }
    }
    sources[key] = "default";
    return GROUP_DEFAULTS[key];
  }

  function script(key: "prescript" | "partscript" | "postscript"): string {
    const own = row[key];
    sources[key] = present(own) ? "group" : "default";
    return present(own) ? own! : "";
  }

  function resolveFlag(key: "setupbmc" | "netboot" | "bootmenu"): boolean | string {
    const value = Boolean(resolve(key));
    if (!markers) return value;
    return value ? "True" : "False";
  }

  const view: Record<string, unknown> = {
    name: row.name,
    setupbmc: resolveFlag("setupbmc"),
    domain: row.domain,
    kerneloptions: resolve("kerneloptions", [["osimage", image?.kerneloptions]], true),
    ipxe_kernel: resolve("ipxe_kernel", [], true),
    prescript: script("prescript"),
    partscript: script("partscript"),
    postscript: script("postscript"),
    netboot: resolveFlag("netboot"),
    bootmenu: resolveFlag("bootmenu"),
    comment: row.comment,
    roles: row.roles,
    scripts: row.scripts,
    provision_interface: resolve("provision_interface", [], true),
    provision_method: resolve("provision_method", [["cluster", context.clusterRow?.provision_method]], true),
    provision_fallback: resolve("provision_fallback", [["cluster", context.clusterRow?.provision_fallback]], true),
    unmanaged_bmc_users: resolve("unmanaged_bmc_users", [["bmcsetup", setup?.unmanaged_bmc_users]]),
  };
  const tagName = row.osimagetag_id === null ? undefined : context.tags.get(row.osimagetag_id);
  if (markers) view._override = override;
  view.osimage = image?.name ?? null;
  view.bmcsetupname = setup?.name ?? null;
  view.osimagetag = tagName ?? "default";
  view.interfaces = context.interfaces.get(row.id) ?? [];
  if (!markers) return view;

  for (const [key, source] of Object.entries(sources)) view[`_${key}_source`] = source;
  view._osimage_source = "group";
  view._bmcsetupname_source = "group";
  view._osimagetag_source = tagName === undefined ? "default" : "group";
  return view;
}

/**
 * Builds the GET /config/group body: every group by name with resolved values and
 * interfaces, without source markers. An empty database gives an empty object.
 */
export async function getGroupListView(db: Reader): Promise<Record<string, unknown>> {
  const rows = await db.select().from(nodeGroup).orderBy(asc(nodeGroup.name));
  const context = await loadViewContext(db);
  const groups: Record<string, unknown> = {};
  for (const row of rows) groups[row.name] = buildGroupView(row, context, false);
  return { config: { group: groups } };
}

/**
 * Builds the GET /config/group/{name} body: resolved values, a `_<key>_source` marker for
 * each inherited key (`group`, `osimage`, `bmcsetup`, `cluster` or `default`) and `_override`,
 * which is true when the group sets a provisioning or kernel value itself. The flags
 * setupbmc, netboot and bootmenu are the strings "True" or "False".
 */
export async function getGroupView(db: Reader, name: string): Promise<Record<string, unknown>> {
  const row = await requireGroup(db, name);
  const context = await loadViewContext(db, row.id);
  return { config: { group: { [row.name]: buildGroupView(row, context, true) } } };
}
