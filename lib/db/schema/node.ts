import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { nodeGroup } from "./group.ts";
import { bmcsetup, osimage, osimageTag } from "./osimage.ts";
import { switchDevice } from "./device.ts";

/** A compute node; empty columns inherit from its group, OS image and cluster at read time. */
export const node = sqliteTable("node", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  group_id: integer("group_id").notNull().references(() => nodeGroup.id, { onDelete: "restrict" }),
  osimage_id: integer("osimage_id").references(() => osimage.id, { onDelete: "restrict" }),
  osimagetag_id: integer("osimagetag_id").references(() => osimageTag.id, { onDelete: "set null" }),
  kerneloptions: text("kerneloptions"),
  ipxe_kernel: text("ipxe_kernel"),
  switch_id: integer("switch_id").references(() => switchDevice.id, { onDelete: "restrict" }),
  switchport: text("switchport"),
  service: integer("service", { mode: "boolean" }).notNull().default(false),
  bmcsetup_id: integer("bmcsetup_id").references(() => bmcsetup.id, { onDelete: "restrict" }),
  setupbmc: integer("setupbmc", { mode: "boolean" }),
  comment: text("comment"),
  roles: text("roles"),
  scripts: text("scripts"),
  vendor: text("vendor"),
  assettag: text("assettag"),
  prescript: text("prescript"),
  partscript: text("partscript"),
  postscript: text("postscript"),
  netboot: integer("netboot", { mode: "boolean" }),
  bootmenu: integer("bootmenu", { mode: "boolean" }),
  provision_interface: text("provision_interface"),
  provision_method: text("provision_method"),
  provision_fallback: text("provision_fallback"),
  tpm_uuid: text("tpm_uuid"),
  tpm_pubkey: text("tpm_pubkey"),
  tpm_sha256: text("tpm_sha256"),
  unmanaged_bmc_users: text("unmanaged_bmc_users"),
}, (table) => [index("node_group_id").on(table.group_id), index("node_switch_port").on(table.switch_id, table.switchport)]);

/** A network interface of a node; its address, if any, is a row in ip_address. */
export const nodeInterface = sqliteTable("node_interface", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  node_id: integer("node_id").notNull().references(() => node.id, { onDelete: "cascade" }),
  interface: text("interface").notNull(),
  /** Lower-case, colon-separated; unique across all node interfaces. */
  macaddress: text("macaddress").unique(),
  mtu: text("mtu"),
  vlanid: text("vlanid"),
  vlan_parent: text("vlan_parent"),
  bond_mode: text("bond_mode"),
  bond_slaves: text("bond_slaves"),
  options: text("options"),
}, (table) => [uniqueIndex("node_interface_node_name").on(table.node_id, table.interface)]);

/** The install state a node last reported. */
export const nodeStatus = sqliteTable("node_status", {
  node_id: integer("node_id").primaryKey().references(() => node.id, { onDelete: "cascade" }),
  state: text("state"),
  status: text("status"),
  /** Unix time in milliseconds. */
  updated: integer("updated").notNull(),
});
