import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { RegenerationOptions, RegenerationResult } from "./dhcp-service.ts";
import { parseZoneSerial, readDnsModel, renderZone, renderZoneStatements, ZONE_FILE_SUFFIX } from "./dns.ts";
import { logger } from "./log.ts";
import { Mutex } from "./mutex.ts";
import { CHECK_TIMEOUT_MS, type GeneratedFile, installCheckedFiles, locateProgram, logNewProblems, requestServiceReload } from "./service-control.ts";
import type { Services } from "./services.ts";

const log = logger("dns");

const locks = new WeakMap<Services, Mutex>();

/**
 * Regenerates the BIND zone files in `[DNS] ZONE_DIRECTORY` and the zone list at
 * `[DNS] NAMED_CONF`, checks each with `named-checkzone` and `named-checkconf`, installs them,
 * removes zone files of networks that no longer exist, and reloads `[SERVICES] DNS`. In mode
 * "changed" a zone whose records did not change keeps its file and serial.
 */
export async function regenerateDns(services: Services, options: RegenerationOptions): Promise<RegenerationResult> {
  const report = options.report ?? (() => Promise.resolve());
  let lock = locks.get(services);
  if (lock === undefined) locks.set(services, (lock = new Mutex()));
  const { zoneDirectory, namedConfPath } = services.config.dns;

  const outcome = await lock.run(async () => {
    const installedZones = readInstalledZones(zoneDirectory);
    const installedMax = Math.max(0, ...[...installedZones.values()].map((zone) => zone.serial ?? 0));
    const model = await readDnsModel(services.db, services.config, installedMax, services.clock.now());
    await report(`rendered ${model.zones.length} zones with serial ${model.serial}`);
    logNewProblems(services, "DNS", model.problems);
    for (const problem of model.problems) await report(problem);

    const files: GeneratedFile[] = [];
    const unchangedZones: string[] = [];
    for (const zone of model.zones) {
      const target = join(zoneDirectory, zone.fileName);
      const previous = installedZones.get(zone.fileName);
      if (options.mode === "changed" && previous?.serial != null && renderZone(services.templates, { ...zone, serial: previous.serial }) === previous.text) {
        unchangedZones.push(target);
        continue;
      }
      const check = (path: string) => ({ program: locateProgram("named-checkzone"), args: [zone.name, path], timeoutMs: CHECK_TIMEOUT_MS });
      files.push({ target, content: renderZone(services.templates, zone), check });
    }
    // The zone list goes last, so named never reads a list that names a zone file not yet in place.
    files.push({
      target: namedConfPath,
      content: renderZoneStatements(services.templates, model),
      check: (path) => ({ program: locateProgram("named-checkconf"), args: [path], timeoutMs: CHECK_TIMEOUT_MS }),
    });
    const result = await installCheckedFiles(services, files, options.mode === "always");
    result.unchanged.push(...unchangedZones);
    if (result.installed.length > 0) log.info("Installed {count} DNS files in {directory}", { count: result.installed.length, directory: zoneDirectory });
    await report(result.installed.length > 0 ? `checked and installed ${result.installed.length} files` : "zone files are unchanged");

    const current = new Set(model.zones.map((zone) => zone.fileName));
    for (const fileName of installedZones.keys()) {
      if (current.has(fileName)) continue;
      const path = join(zoneDirectory, fileName);
      rmSync(path, { force: true });
      log.info("Removed {path}: its zone no longer exists", { path });
      result.installed.push(path);
      await report(`removed ${path}: its zone no longer exists`);
    }
    return { ...result, problems: model.problems };
  });

  if (outcome.installed.length === 0) return { ...outcome, reloaded: false };
  const unit = services.config.services.dns;
  const reload = await requestServiceReload(services, unit);
  await report(reload.waitedMs > 0 ? `reloaded ${unit} after the cool-down` : `reloaded ${unit}`);
  return { ...outcome, reloaded: true };
}

/** Reads the zone files this daemon wrote earlier, with their SOA serials, by file name. */
function readInstalledZones(directory: string): Map<string, { text: string; serial: number | null }> {
  const zones = new Map<string, { text: string; serial: number | null }>();
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return zones;
  }
  for (const name of names.filter((entry) => entry.endsWith(ZONE_FILE_SUFFIX))) {
    const text = readFileSync(join(directory, name), "utf8");
    zones.set(name, { text, serial: parseZoneSerial(text) });
  }
  return zones;
}
