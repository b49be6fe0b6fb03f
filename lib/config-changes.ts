import { and, eq, ne } from "drizzle-orm";
import { controller, journal } from "./db/schema/index.ts";
import { scheduleServiceRegeneration } from "./dhcp-dns-regeneration.ts";
import { describeError, logger } from "./log.ts";
import type { Services } from "./services.ts";

const log = logger("config-changes");

/** Route prefixes whose writes change what DHCP and DNS publish. */
const PUBLISHED_PREFIXES = ["/config/node", "/config/group", "/config/network", "/config/cluster", "/config/switch", "/config/otherdev"];

/** Writes under those prefixes that do not change published data. */
const UNPUBLISHED_SUFFIXES = ["/_nextfreeip", "/_osgrab", "/_ospush"];

/** Journal tasks that make a peer controller regenerate its own DHCP and DNS files. */
const PEER_TASKS = ["regenerate_dhcp", "regenerate_dns"] as const;

/** True when a finished request changed data that DHCP or DNS publish. */
export function changesPublishedData(method: string, route: string | undefined, status: number): boolean {
  if (route === undefined || status < 200 || status >= 300) return false;
  const writes = method === "POST" || route.endsWith("/_delete");
  if (!writes) return false;
  if (UNPUBLISHED_SUFFIXES.some((suffix) => route.endsWith(suffix))) return false;
  return PUBLISHED_PREFIXES.some((prefix) => route === prefix || route.startsWith(prefix + "/"));
}

/**
 * Regenerates DHCP and DNS after a successful write to published data: here through the
 * debounced scheduler, and on every other controller through a journal task, queued once
 * while one is still pending.
 */
export function notifyConfigurationChange(services: Services, method: string, route: string | undefined, status: number): void {
  if (!changesPublishedData(method, route, status)) return;
  scheduleServiceRegeneration(services, `${method} ${route}`);
  if (services.config.ha.enabled) {
    void queuePeerRegeneration(services).catch((error) =>
      log.warning("Cannot queue DHCP and DNS regeneration for peer controllers: {error}", { error: describeError(error) }));
  }
}

async function queuePeerRegeneration(services: Services): Promise<void> {
  const self = services.config.ha.controllerName;
  const now = services.clock.now();
  await services.db.write(async (tx) => {
    const peers = await tx.select({ hostname: controller.hostname }).from(controller).where(ne(controller.hostname, self));
    for (const peer of peers) {
      for (const task of PEER_TASKS) {
        const [pending] = await tx.select({ id: journal.id }).from(journal).where(and(eq(journal.controller, peer.hostname), eq(journal.task, task)));
        if (!pending) await tx.insert(journal).values({ controller: peer.hostname, task, sent_by: self, created: now });
      }
    }
  });
}
