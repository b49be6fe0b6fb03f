import { sql } from "drizzle-orm";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** The one cluster row; its id is always 1. */
export const cluster = sqliteTable("cluster", {
  id: integer("id").primaryKey(),
  name: text("name").notNull(),
  user: text("user"),
  domain_search: text("domain_search"),
  nameserver_ip: text("nameserver_ip"),
  forwardserver_ip: text("forwardserver_ip"),
  ntp_server: text("ntp_server"),
  technical_contacts: text("technical_contacts"),
  provision_method: text("provision_method"),
  provision_fallback: text("provision_fallback"),
  debug: integer("debug", { mode: "boolean" }).notNull().default(false),
  security: integer("security", { mode: "boolean" }).notNull().default(false),
  packing_bootpause: integer("packing_bootpause", { mode: "boolean" }).notNull().default(true),
  createnode_ondemand: integer("createnode_ondemand", { mode: "boolean" }).notNull().default(true),
  createnode_macashost: integer("createnode_macashost", { mode: "boolean" }).notNull().default(false),
  nextnode_discover: integer("nextnode_discover", { mode: "boolean" }).notNull().default(false),
  bind_legacy: integer("bind_legacy", { mode: "boolean" }).notNull().default(false),
  dnssec_enable: integer("dnssec_enable", { mode: "boolean" }),
  dnssec_validation: integer("dnssec_validation", { mode: "boolean" }),
  /** Last BIND zone serial handed out, so serials increase even within one second. */
  dns_serial: integer("dns_serial").notNull().default(0),
});

/** A controller running this daemon; the beacon controller is the cluster's address for nodes. */
export const controller = sqliteTable("controller", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  hostname: text("hostname").notNull().unique(),
  beacon: integer("beacon", { mode: "boolean" }).notNull().default(false),
  shadow: integer("shadow", { mode: "boolean" }).notNull().default(false),
  status: text("status"),
  vendor: text("vendor"),
  serverport: integer("serverport").notNull().default(7050),
  /** Base URL peers use to reach this controller's API, e.g. http://10.141.255.251:7050. */
  endpoint: text("endpoint"),
  /** Unix time in milliseconds of this controller's last heartbeat. */
  seen: integer("seen"),
  created: text("created").notNull().default(sql`CURRENT_TIMESTAMP`),
});
