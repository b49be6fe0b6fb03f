import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** An Ethernet switch that the daemon reads over SNMP to find which node sits on which port. */
export const switchDevice = sqliteTable("switch", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  macaddress: text("macaddress").unique(),
  oid: text("oid"),
  /** SNMP read community. */
  read: text("read"),
  /** SNMP write community. */
  rw: text("rw"),
  /** Comma-separated port names or numbers that connect to other switches. */
  uplinkports: text("uplinkports"),
  vendor: text("vendor"),
  netboot: integer("netboot", { mode: "boolean" }),
  default_url: text("default_url"),
  bootfile: text("bootfile"),
  ztpconfig: text("ztpconfig"),
  ztpformat: text("ztpformat"),
  comment: text("comment"),
});

/** Any other addressed device (PDU, storage head, ...) that needs DHCP and DNS entries. */
export const otherDevice = sqliteTable("other_device", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  macaddress: text("macaddress").unique(),
  vendor: text("vendor"),
  comment: text("comment"),
});
