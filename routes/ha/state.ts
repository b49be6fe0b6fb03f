import { readLease } from "../../lib/ha.ts";
import { handler, json } from "../../lib/route.ts";
import { formatStatusTime } from "../../lib/jobs.ts";

export const GET = handler({ auth: "admin", summary: "HA state of this controller and the master lease" }, async ({ services }) => {
  const lease = await readLease(services.db);
  const now = services.clock.now();
  return json({
    ha: {
      enabled: services.config.ha.enabled,
      controller: services.config.ha.controllerName,
      master: services.config.ha.enabled && services.ha.isMaster(),
      insync: services.ha.lastError === null,
      overrule: services.ha.overrule,
      syncimages: true,
      sharedip: false,
      lease_holder: lease.expiresAt > now ? lease.holder : null,
      lease_expires: lease.expiresAt > now ? formatStatusTime(lease.expiresAt) : null,
      updated: lease.updated ? formatStatusTime(lease.updated) : null,
      error: services.ha.lastError,
    },
  });
});
