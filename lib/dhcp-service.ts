import { buildDhcpModel, renderIscDhcpConfig, renderKeaConfig } from "./dhcp.ts";
import { readAddressBook } from "./dhcp-dns-hosts.ts";
import { logger } from "./log.ts";
import { Mutex } from "./mutex.ts";
import { runsSingletonWork } from "./services.ts";
import { CHECK_TIMEOUT_MS, installCheckedFiles, locateProgram, logNewProblems, requestServiceReload } from "./service-control.ts";
import type { Services } from "./services.ts";

const log = logger("dhcp");

/** Install policy and progress sink of one regeneration. */
export interface RegenerationOptions {
  /**
   * "always" installs and reloads even when nothing changed (a manual reload); "changed"
   * installs and reloads only when the generated text differs from the installed file.
   */
  mode: "always" | "changed";
  /** Receives progress lines, such as a job's status lines. */
  report?: (line: string) => Promise<void>;
}

/** Files a regeneration installed or left alone, and whether it reloaded the service. */
export interface RegenerationResult {
  installed: string[];
  unchanged: string[];
  reloaded: boolean;
  /** Addresses and names that were left out, with the reason. */
  problems: string[];
}

const locks = new WeakMap<Services, Mutex>();

/**
 * Regenerates the DHCP configuration for `[DHCP] SERVER` (ISC dhcpd or Kea), validates it with
 * the server's own check (`dhcpd -t -cf` or `kea-dhcp4 -t`), installs it at `[DHCP] CONFIG_PATH`
 * and reloads `[SERVICES] DHCP`. Regenerations of one app run one at a time. The reload waits
 * outside that lock, so a queued regeneration can render while the cool-down runs.
 */
export async function regenerateDhcp(services: Services, options: RegenerationOptions): Promise<RegenerationResult> {
  const report = options.report ?? (() => Promise.resolve());
  let lock = locks.get(services);
  if (lock === undefined) locks.set(services, (lock = new Mutex()));

  const outcome = await lock.run(async () => {
    const book = await services.db.write((tx) => readAddressBook(tx));
    const model = buildDhcpModel(book, services.config);
    const kea = model.server === "kea";
    const content = kea ? renderKeaConfig(model) : renderIscDhcpConfig(services.templates, model);
    const subnetCount = model.subnets.length + model.sharedNetworks.reduce((sum, shared) => sum + shared.subnets.length, 0);
    await report(`rendered the ${kea ? "Kea" : "ISC dhcpd"} configuration: ${subnetCount} subnets, ${model.hosts.length} host reservations`);
    logNewProblems(services, "DHCP", model.problems);
    for (const problem of model.problems) await report(problem);

    const target = services.config.dhcp.configPath;
    const check = (path: string) => kea
      ? { program: locateProgram("kea-dhcp4"), args: ["-t", path], timeoutMs: CHECK_TIMEOUT_MS }
      // Without -q, because -q also hides the syntax errors.
      : { program: locateProgram("dhcpd"), args: ["-t", "-cf", path], timeoutMs: CHECK_TIMEOUT_MS };
    const installed = await installCheckedFiles(services, [{ target, content, check }], options.mode === "always");
    if (installed.installed.length > 0) {
      log.info("Installed the DHCP configuration {target}", { target });
      await report(`checked and installed ${target}`);
    } else {
      await report(`${target} is unchanged`);
    }
    return { ...installed, problems: model.problems };
  });

  if (outcome.installed.length === 0) return { ...outcome, reloaded: false };
  const unit = services.config.services.dhcp;
  if (!runsSingletonWork(services)) {
    // Two controllers serving DHCP would hand out conflicting leases, so only the master serves it.
    await report(`${unit} is reloaded by the master controller only`);
    return { ...outcome, reloaded: false };
  }
  const reload = await requestServiceReload(services, unit);
  await report(reload.waitedMs > 0 ? `reloaded ${unit} after the cool-down` : `reloaded ${unit}`);
  return { ...outcome, reloaded: true };
}
