import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** A long-running operation that clients follow through its request id. */
export const job = sqliteTable("job", {
  request_id: text("request_id").primaryKey(),
  /** Operation name, e.g. "pack" or "power". */
  kind: text("kind").notNull(),
  /** Object it acts on, e.g. an image name. A second request for the same kind and object joins this job. */
  object: text("object").notNull(),
  /** queued, running, done or failed. */
  state: text("state").notNull(),
  username: text("username"),
  /** JSON parameters of the operation. */
  params: text("params"),
  /** Controller that runs it. */
  controller: text("controller"),
  created: integer("created").notNull(),
  updated: integer("updated").notNull(),
}, (table) => [index("job_kind_object_state").on(table.kind, table.object, table.state)]);

/** One progress line of a job; `read` marks lines a poll already returned. */
export const jobMessage = sqliteTable("job_message", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  request_id: text("request_id").notNull().references(() => job.request_id, { onDelete: "cascade" }),
  message: text("message").notNull(),
  /** HTTP-like outcome of the step: 200 for progress and success, 4xx/5xx for a failure. */
  status: integer("status").notNull().default(200),
  created: integer("created").notNull(),
  read: integer("read", { mode: "boolean" }).notNull().default(false),
}, (table) => [index("job_message_request").on(table.request_id, table.read)]);
