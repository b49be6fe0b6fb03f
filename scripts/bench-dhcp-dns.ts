// Measures DHCP and DNS generation for a large cluster: `npx tsx scripts/bench-dhcp-dns.ts
// [--nodes 10000] [--runs 5]`. It builds a fresh database in a temporary folder, inserts the
// nodes with bulk inserts, and prints the median of each phase. No service is started; the
// reload command is /bin/true.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapIfEmpty } from "../lib/bootstrap.ts";
import { systemClock } from "../lib/clock.ts";
import { parseConfig } from "../lib/config.ts";
import { openDatabase } from "../lib/db/database.ts";
import { buildDhcpModel, renderIscDhcpConfig, renderKeaConfig } from "../lib/dhcp.ts";
import { readAddressBook } from "../lib/dhcp-dns-hosts.ts";
import { regenerateDhcp } from "../lib/dhcp-service.ts";
import { readDnsModel, renderZone, renderZoneStatements } from "../lib/dns.ts";
import { regenerateDns } from "../lib/dns-service.ts";
import { systemHardware } from "../lib/hardware/index.ts";
import { ensureKeyFile } from "../lib/secrets.ts";
import { createServices } from "../lib/services.ts";
import { insertNodes } from "../tests/dhcp-dns-fixtures.ts";

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? Number(process.argv[index + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} needs a positive whole number`);
  return value;
}

const nodes = option("nodes", 10_000);
const runs = option("runs", 5);
// The cluster network is a /16 with its DHCP range at 10.141.155.0 and up; node addresses start
// at 10.141.0.5 and must stay below it.
if (nodes > 39_000) throw new Error("--nodes is limited to 39000 so node addresses stay below the DHCP range");

const directory = mkdtempSync(join(tmpdir(), "luna2-bench-"));
try {
  const config = parseConfig(
    [
      "[API]",
      "USERNAME = luna",
      "PASSWORD = bench",
      "SECRET_KEY = bench-secret-key-of-enough-length-0123456789",
      "[DATABASE]",
      "DATABASE = luna.db",
      "[SERVICES]",
      "COMMAND = /bin/true",
      "COOLDOWN = 1s",
    ].join("\n"),
    join(directory, "luna.ini"),
  );
  ensureKeyFile(config.files.keyfile);
  const db = await openDatabase(config.database);
  await bootstrapIfEmpty(db, config, systemClock.now());
  const insertStarted = performance.now();
  await insertNodes(db, { count: nodes, prefix: "node", firstHost: 5 });
  console.log(`Inserted ${nodes} nodes with 2 interfaces each in ${Math.round(performance.now() - insertStarted)} ms`);
  const services = createServices({ config, db, hardware: systemHardware });

  const phases: Record<string, () => Promise<unknown>> = {
    "read address book": () => services.db.write((tx) => readAddressBook(tx)),
    "DHCP ISC: read, build, render": async () => {
      const book = await services.db.write((tx) => readAddressBook(tx));
      return renderIscDhcpConfig(services.templates, buildDhcpModel(book, config));
    },
    "DHCP Kea: read, build, render": async () => {
      const book = await services.db.write((tx) => readAddressBook(tx));
      return renderKeaConfig(buildDhcpModel(book, { ...config, dhcp: { ...config.dhcp, server: "kea" } }));
    },
    "DNS: read with serial, build, render": async () => {
      const model = await readDnsModel(services.db, config, 0, systemClock.now());
      return [...model.zones.map((zone) => renderZone(services.templates, zone)), renderZoneStatements(services.templates, model)];
    },
    // Fresh services per run, so the reload cool-down of the previous run does not add a wait.
    "DHCP ISC end to end (with dhcpd -t)": () => regenerateDhcp(createServices({ config, db, hardware: systemHardware }), { mode: "always" }),
    "DNS end to end (with named-checkzone)": () => regenerateDns(createServices({ config, db, hardware: systemHardware }), { mode: "always" }),
  };

  console.log(`Median of ${runs} runs after one warm-up run, ${nodes} nodes:`);
  for (const [name, phase] of Object.entries(phases)) {
    await phase();
    const durations: number[] = [];
    for (let run = 0; run < runs; run++) {
      const started = performance.now();
      await phase();
      durations.push(performance.now() - started);
    }
    durations.sort((left, right) => left - right);
    const median = durations[Math.floor(durations.length / 2)];
    console.log(`  ${name.padEnd(40)} ${median.toFixed(0).padStart(6)} ms  (min ${durations[0].toFixed(0)}, max ${durations.at(-1)!.toFixed(0)})`);
  }
  db.close();
} finally {
  rmSync(directory, { recursive: true, force: true });
}
