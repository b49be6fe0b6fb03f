import { type AnySQLiteColumn, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** An OS image: a directory tree on the controller and the files packed from it. */
export const osimage = sqliteTable("osimage", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  grab_filesystems: text("grab_filesystems"),
  grab_exclude: text("grab_exclude"),
  initrdfile: text("initrdfile"),
  kernelfile: text("kernelfile"),
  kernelmodules: text("kernelmodules"),
  kerneloptions: text("kerneloptions"),
  kernelversion: text("kernelversion"),
  path: text("path"),
  imagefile: text("imagefile"),
  distribution: text("distribution"),
  osrelease: text("osrelease"),
  /** The active tag; null means the image's own files. */
  tag_id: integer("tag_id").references((): AnySQLiteColumn => osimageTag.id, { onDelete: "set null" }),
  /** True when the tree changed since the last pack. */
  changed: integer("changed", { mode: "boolean" }).notNull().default(false),
  comment: text("comment"),
});

/** A named snapshot of an image's packed files and kernel options. */
export const osimageTag = sqliteTable("osimage_tag", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  osimage_id: integer("osimage_id").notNull().references(() => osimage.id, { onDelete: "cascade" }),
  name: text("name").notNull(),
  kernelfile: text("kernelfile"),
  initrdfile: text("initrdfile"),
  imagefile: text("imagefile"),
  kerneloptions: text("kerneloptions"),
}, (table) => [uniqueIndex("osimage_tag_image_name").on(table.osimage_id, table.name)]);

/** BMC credentials and channels applied to nodes; the password is stored exactly as sent. */
export const bmcsetup = sqliteTable("bmcsetup", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  userid: integer("userid"),
  username: text("username"),
  password: text("password"),
  netchannel: integer("netchannel"),
  mgmtchannel: integer("mgmtchannel"),
  comment: text("comment"),
  unmanaged_bmc_users: text("unmanaged_bmc_users"),
  /** ipmitool cipher suite tried first; 3 is the fallback. */
  cipher_suite: integer("cipher_suite"),
  /** ipmitool privilege level: USER, OPERATOR or ADMINISTRATOR. */
  privilege: text("privilege"),
  retries: integer("retries"),
  /** Seconds per ipmitool call. */
  timeout: integer("timeout"),
});
