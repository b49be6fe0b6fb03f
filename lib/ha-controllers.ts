import { asc } from "drizzle-orm";
import { controller } from "./db/schema/index.ts";
import { readLease } from "./ha.ts";
import { formatStatusTime } from "./jobs.ts";
import type { Services } from "./services.ts";

/** Describes every controller for GET /ha/controllers, keyed by hostname. */
export async function listControllerStates(services: Services): Promise<Record<string, unknown>> {
  const rows = await services.db.orm.select().from(controller).orderBy(asc(controller.hostname));
  const lease = await readLease(services.db);
  const now = services.clock.now();
  const states: Record<string, unknown> = {};
  for (const row of rows) {
    states[row.hostname] = {
      config: { beacon: row.beacon, shadow: row.shadow, endpoint: row.endpoint },
      master: lease.holder === row.hostname && lease.expiresAt > now,
      seen: row.seen ? formatStatusTime(row.seen) : null,
      self: row.hostname === services.config.ha.controllerName,
    };
  }
  return states;
}
