import { integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { node } from "./node.ts";
import { nodeGroup } from "./group.ts";

/** A file a node receives during install; `content` is AES-GCM ciphertext, never plaintext. */
export const nodeSecret = sqliteTable("node_secret", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  node_id: integer("node_id").notNull().references(() => node.id, { onDelete: "cascade" }),
  name: text("name").notNull(),
  content: text("content").notNull(),
  path: text("path"),
}, (table) => [uniqueIndex("node_secret_node_name").on(table.node_id, table.name)]);

/** A secret every member node of a group receives; encrypted like node secrets. */
export const groupSecret = sqliteTable("group_secret", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  group_id: integer("group_id").notNull().references(() => nodeGroup.id, { onDelete: "cascade" }),
  name: text("name").notNull(),
  content: text("content").notNull(),
  path: text("path"),
}, (table) => [uniqueIndex("group_secret_group_name").on(table.group_id, table.name)]);
