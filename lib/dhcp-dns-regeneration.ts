import { regenerateDhcp } from "./dhcp-service.ts";
import { regenerateDns } from "./dns-service.ts";
import { createJob, runJob } from "./jobs.ts";
import { describeError, logger } from "./log.ts";
import type { Services } from "./services.ts";
import { Templates } from "./templates.ts";

const log = logger("services");

/** Quiet time after the last change before a scheduled regeneration starts. */
export const REGENERATION_DEBOUNCE_MS = 1000;
/** Maximum wait of a scheduled regeneration while changes keep arriving. */
export const REGENERATION_MAX_DELAY_MS = 10_000;

interface ScheduleState {
  timer: ReturnType<typeof setTimeout> | null;
  /** performance.now() of the first request the armed timer covers. */
  firstRequest: number | null;
  reasons: string[];
  running: Promise<void> | null;
  /** Set when a request arrived during a run, so another run follows it. */
  rerun: boolean;
}

const schedules = new WeakMap<Services, ScheduleState>();

function scheduleState(services: Services): ScheduleState {
  let state = schedules.get(services);
  if (state === undefined) {
    schedules.set(services, (state = { timer: null, firstRequest: null, reasons: [], running: null, rerun: false }));
  }
  return state;
}

/**
 * Hook for every write that changes what DHCP or DNS publish (nodes, node interfaces, groups
 * with interfaces, networks, the cluster and its controllers, switches, other devices): call it
 * after the write transaction committed. It returns at once. Requests are debounced
 * (REGENERATION_DEBOUNCE_MS of quiet, REGENERATION_MAX_DELAY_MS at most) and a burst becomes one
 * background run that regenerates both configurations, installs changed files only and reloads
 * the services whose files changed. Errors are logged, never thrown.
 */
export function scheduleServiceRegeneration(services: Services, reason: string): void {
  const state = scheduleState(services);
  state.reasons.push(reason);
  if (state.running !== null) {
    state.rerun = true;
    return;
  }
  arm(services, state);
}

function arm(services: Services, state: ScheduleState): void {
  const now = performance.now();
  state.firstRequest ??= now;
  const delay = Math.max(0, Math.min(REGENERATION_DEBOUNCE_MS, state.firstRequest + REGENERATION_MAX_DELAY_MS - now));
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = setTimeout(() => void startRun(services, state), delay);
  // A pending regeneration must not keep a stopping process alive.
  (state.timer as { unref?: () => void }).unref?.();
}

function startRun(services: Services, state: ScheduleState): Promise<void> {
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = null;
  state.firstRequest = null;
  const reasons = state.reasons.splice(0);
  state.running = (async () => {
    log.info("Regenerating DHCP and DNS configuration after: {reasons}", { reasons: summarize(reasons) });
    const results = await Promise.allSettled([
      regenerateDhcp(services, { mode: "changed" }),
      regenerateDns(services, { mode: "changed" }),
    ]);
    for (const [index, result] of results.entries()) {
      if (result.status === "rejected") {
        log.error("Regeneration of the {service} configuration failed: {error}", {
          service: index === 0 ? "DHCP" : "DNS",
          error: describeError(result.reason),
        });
      }
    }
  })().finally(() => {
    state.running = null;
    if (state.rerun) {
      state.rerun = false;
      arm(services, state);
    }
  });
  return state.running;
}

/**
 * Starts a scheduled regeneration now instead of after the debounce delay, and waits until no
 * regeneration runs. For tests and an orderly shutdown.
 */
export async function flushServiceRegeneration(services: Services): Promise<void> {
  const state = scheduleState(services);
  while (state.timer !== null || state.running !== null) {
    if (state.running !== null) await state.running;
    else await startRun(services, state);
  }
}

function summarize(reasons: string[]): string {
  const unique = [...new Set(reasons)];
  return unique.length <= 5 ? unique.join("; ") : `${unique.slice(0, 5).join("; ")} and ${unique.length - 5} more`;
}

/** Services whose configuration `/service/<name>/reload` regenerates. */
export type ReloadableService = "dhcp" | "dns";

/** Job started or joined by a reload request, with the message for the caller. */
export interface StartedJob {
  requestId: string;
  message: string;
}

/**
 * Starts a job that regenerates, validates and installs the DHCP or DNS configuration and
 * reloads the service, even when no file changed. A request while one is queued or running
 * joins it.
 */
export async function startServiceReload(services: Services, name: ReloadableService, username: string | null): Promise<StartedJob> {
  const handle = await createJob(services.db, services.clock, {
    kind: "service",
    object: `${name} reload`,
    username,
    controller: services.config.ha.controllerName,
  });
  if (handle.existing) return { requestId: handle.requestId, message: `service for ${name} reload already queued` };

  void runJob(services.db, services.clock, handle.requestId, async (reporter) => {
    await reporter.info(`reload service ${name}`);
    const regenerate = name === "dhcp" ? regenerateDhcp : regenerateDns;
    try {
      await regenerate(services, { mode: "always", report: (line) => reporter.info(line) });
    } catch (error) {
      throw new Error(`reload service ${name}: ${(error as Error).message}`);
    }
    await reporter.info(`finished reload service ${name}`);
  });
  return { requestId: handle.requestId, message: `service for ${name} reload queued` };
}

/**
 * Starts a job that compiles the templates again from the built-in folder and
 * `[TEMPLATES] TEMPLATE_FILES`. When every template compiles, the new set replaces the old one
 * and DHCP and DNS are regenerated with it. Otherwise the old set stays, and the job fails with
 * the compile error.
 */
export async function startTemplateReload(services: Services, username: string | null): Promise<StartedJob> {
  const handle = await createJob(services.db, services.clock, {
    kind: "service",
    object: "luna2 reload",
    username,
    controller: services.config.ha.controllerName,
  });
  if (handle.existing) return { requestId: handle.requestId, message: "service for luna2 reload already queued" };

  void runJob(services.db, services.clock, handle.requestId, async (reporter) => {
    await reporter.info("reload service luna2");
    const templates = new Templates(services.config.templates.directory);
    services.templates = templates;
    await reporter.info(`compiled ${templates.sources.size} templates`);
    scheduleServiceRegeneration(services, "templates reloaded");
    await reporter.info("finished reload service luna2");
  });
  return { requestId: handle.requestId, message: "service for luna2 reload queued" };
}
