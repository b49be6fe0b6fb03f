import { integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { bmcsetup, osimage, osimageTag } from "./osimage.ts";
import { network } from "./network.ts";

/** A node group: defaults that member nodes inherit, and interfaces copied into every member. */
export const nodeGroup = sqliteTable("node_group", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  bmcsetup_id: integer("bmcsetup_id").references(() => bmcsetup.id, { onDelete: "restrict" }),
  setupbmc: integer("setupbmc", { mode: "boolean" }),
  domain: text("domain"),
  osimage_id: integer("osimage_id").references(() => osimage.id, { onDelete: "restrict" }),
  osimagetag_id: integer("osimagetag_id").references(() => osimageTag.id, { onDelete: "set null" }),
  kerneloptions: text("kerneloptions"),
  ipxe_kernel: text("ipxe_kernel"),
  prescript: text("prescript"),
  partscript: text("partscript"),
  postscript: text("postscript"),
  netboot: integer("netboot", { mode: "boolean" }),
  bootmenu: integer("bootmenu", { mode: "boolean" }),
  comment: text("comment"),
  roles: text("roles"),
  scripts: text("scripts"),
  provision_interface: text("provision_interface"),
  provision_method: text("provision_method"),
  provision_fallback: text("provision_fallback"),
  unmanaged_bmc_users: text("unmanaged_bmc_users"),
});

/** An interface that every member node of a group gets, with its own address in `network_id`. */
export const groupInterface = sqliteTable("group_interface", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  group_id: integer("group_id").notNull().references(() => nodeGroup.id, { onDelete: "cascade" }),
  interface: text("interface").notNull(),
  network_id: integer("network_id").references(() => network.id, { onDelete: "set null" }),
  mtu: text("mtu"),
  vlanid: text("vlanid"),
  vlan_parent: text("vlan_parent"),
  bond_mode: text("bond_mode"),
  bond_slaves: text("bond_slaves"),
  dhcp: integer("dhcp", { mode: "boolean" }).notNull().default(false),
  options: text("options"),
}, (table) => [uniqueIndex("group_interface_group_name").on(table.group_id, table.interface)]);
