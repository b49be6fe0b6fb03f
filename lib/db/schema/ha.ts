import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** A task queued for one controller, drained in id order by that controller. */
export const journal = sqliteTable("journal", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  controller: text("controller").notNull(),
  task: text("task").notNull(),
  /** JSON payload of the task. */
  payload: text("payload"),
  sent_by: text("sent_by"),
  tries: integer("tries").notNull().default(0),
  created: integer("created").notNull(),
}, (table) => [index("journal_controller").on(table.controller, table.id)]);

/** The single master lease shared by all controllers; id is always 1. */
export const haLease = sqliteTable("ha_lease", {
  id: integer("id").primaryKey(),
  holder: text("holder"),
  /** Unix time in milliseconds when the lease lapses unless renewed. */
  expires_at: integer("expires_at").notNull().default(0),
  overrule: integer("overrule", { mode: "boolean" }).notNull().default(false),
  updated: integer("updated").notNull().default(0),
});
