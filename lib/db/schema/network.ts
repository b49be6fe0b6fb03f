import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { controller } from "./cluster.ts";
import { nodeInterface } from "./node.ts";
import { switchDevice, otherDevice } from "./device.ts";

/**
 * An IPv4 and/or IPv6 network; prefixes are stored as integers, addresses in canonical text form.
 * The id is AUTOINCREMENT, so it is never reused and serves as the stable Kea subnet id.
 */
export const network = sqliteTable("network", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  network: text("network"),
  subnet: integer("subnet"),
  network_ipv6: text("network_ipv6"),
  subnet_ipv6: integer("subnet_ipv6"),
  gateway: text("gateway"),
  gateway_ipv6: text("gateway_ipv6"),
  gateway_metric: integer("gateway_metric"),
  nameserver_ip: text("nameserver_ip"),
  nameserver_ip_ipv6: text("nameserver_ip_ipv6"),
  ntp_server: text("ntp_server"),
  dhcp: integer("dhcp", { mode: "boolean" }).notNull().default(false),
  dhcp_nodes_in_pool: integer("dhcp_nodes_in_pool", { mode: "boolean" }).notNull().default(false),
  dhcp_nodes_only: integer("dhcp_nodes_only", { mode: "boolean" }).notNull().default(false),
  dhcp_range_begin: text("dhcp_range_begin"),
  dhcp_range_end: text("dhcp_range_end"),
  dhcp_range_begin_ipv6: text("dhcp_range_begin_ipv6"),
  dhcp_range_end_ipv6: text("dhcp_range_end_ipv6"),
  dhcp_relay: text("dhcp_relay"),
  zone: text("zone").notNull().default("internal"),
  shared: text("shared"),
  type: text("type").notNull().default("ethernet"),
  non_authoritative: integer("non_authoritative", { mode: "boolean" }).notNull().default(false),
  comment: text("comment"),
});

/**
 * An address held by exactly one owner: a node interface, a controller, a switch or another device.
 * Each owner column is a real foreign key; a CHECK keeps exactly one of them set.
 */
export const ipAddress = sqliteTable("ip_address", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  network_id: integer("network_id").notNull().references(() => network.id, { onDelete: "cascade" }),
  ipaddress: text("ipaddress"),
  ipaddress_ipv6: text("ipaddress_ipv6"),
  dhcp: integer("dhcp", { mode: "boolean" }).notNull().default(false),
  node_interface_id: integer("node_interface_id").unique().references(() => nodeInterface.id, { onDelete: "cascade" }),
  controller_id: integer("controller_id").references(() => controller.id, { onDelete: "cascade" }),
  switch_id: integer("switch_id").unique().references(() => switchDevice.id, { onDelete: "cascade" }),
  other_device_id: integer("other_device_id").unique().references(() => otherDevice.id, { onDelete: "cascade" }),
}, (table) => [
  uniqueIndex("ip_address_network_ipv4").on(table.network_id, table.ipaddress),
  uniqueIndex("ip_address_network_ipv6").on(table.network_id, table.ipaddress_ipv6),
  index("ip_address_ipv4").on(table.ipaddress),
  index("ip_address_ipv6").on(table.ipaddress_ipv6),
  uniqueIndex("ip_address_controller_network").on(table.controller_id, table.network_id),
  check(
    "ip_address_one_owner",
    sql`(${table.node_interface_id} IS NOT NULL) + (${table.controller_id} IS NOT NULL) + (${table.switch_id} IS NOT NULL) + (${table.other_device_id} IS NOT NULL) = 1`,
  ),
]);

/** An address handed out by _nextfreeip and kept from allocation until it expires. */
export const reservedIpAddress = sqliteTable("reserved_ip_address", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  network_id: integer("network_id").notNull().references(() => network.id, { onDelete: "cascade" }),
  ipaddress: text("ipaddress").notNull(),
  /** Unix time in milliseconds after which the reservation no longer counts. */
  expires_at: integer("expires_at").notNull(),
}, (table) => [uniqueIndex("reserved_ip_address_network_ip").on(table.network_id, table.ipaddress)]);
