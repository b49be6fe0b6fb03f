/**
 * Measures a bulk power status over 200 nodes: 150 BMCs are real ipmi_sim simulators on
 * 127.0.1.1-150, 50 point at 127.0.2.1-50 where nothing listens. Runs in-process (app.request)
 * with real ipmitool and writes the medians to docs/benchmarks-power.md.
 *
 * Run: npx tsx scripts/bench-power.ts [runs]
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { eq } from "drizzle-orm";
import { bmcsetup, ipAddress, network, node, nodeGroup, nodeInterface } from "../lib/db/schema/index.ts";
import { type CommandSpec, systemHardware } from "../lib/hardware/index.ts";
import { type BmcTarget, runIpmiPower } from "../lib/hardware/ipmi.ts";
import { type ControlStatus, readControlStatus } from "../lib/power.ts";
import { createTestApp, type TestApp } from "../tests/helpers.ts";
import { pickSimulatorPort, requireLoopback, type SimulatedBmc, startSimulators } from "../tests/ipmi-sim.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const REPORT = join(ROOT, "docs", "benchmarks-power.md");
const COMMAND = "npx tsx scripts/bench-power.ts";

const LIVE = 150;
const SILENT = 50;
const FAN_OUT = 10;
const TIMEOUT_SECONDS = 1;
const RETRIES = 1;
const PASSWORD = "bench-password";
/** Simulators started at once, to keep the start-up from starving the machine. */
const START_BATCH = 25;
/** Upper bound of one run; the expected bound is ceil(200 / 10) x 2 s = 40 s. */
const RUN_LIMIT_MS = 120_000;
const POLL_MS = 50;

const liveAddress = (index: number) => `127.0.1.${index + 1}`;
const silentAddress = (index: number) => `127.0.2.${index + 1}`;
const nodeName = (index: number) => `bench${String(index + 1).padStart(3, "0")}`;

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Durations of ipmitool calls in the current run, by kind of BMC. */
const callDurations = { live: [] as number[], silent: [] as number[] };

/** Runs real ipmitool, but only against 127.0.0.0/8, and records how long each call took. */
async function loopbackOnly(spec: CommandSpec) {
  const address = spec.args[spec.args.indexOf("-H") + 1];
  requireLoopback(address);
  const started = performance.now();
  try {
    return await systemHardware.run(spec);
  } finally {
    (address.startsWith("127.0.2.") ? callDurations.silent : callDurations.live).push(performance.now() - started);
  }
}

async function addNodes(t: TestApp, addresses: string[]): Promise<void> {
  await t.db.write(async (tx) => {
    const [group] = await tx.select({ id: nodeGroup.id }).from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
    const [ipmi] = await tx.select({ id: network.id }).from(network).where(eq(network.name, "ipmi"));
    for (const [index, address] of addresses.entries()) {
      const [row] = await tx.insert(node).values({ name: nodeName(index), group_id: group.id }).returning({ id: node.id });
      const [bmc] = await tx.insert(nodeInterface).values({ node_id: row.id, interface: "BMC" }).returning({ id: nodeInterface.id });
      await tx.insert(ipAddress).values({ network_id: ipmi.id, ipaddress: address, node_interface_id: bmc.id });
    }
    await tx.update(bmcsetup).set({ password: PASSWORD, cipher_suite: 3 });
  });
}

interface RunResult {
  liveCallMs: number;
  silentCallMs: number;
  requestIdMs: number;
  firstResultMs: number;
  doneMs: number;
  ok: number;
  failed: number;
}

async function runOnce(t: TestApp, total: number): Promise<RunResult> {
  callDurations.live.length = 0;
  callDurations.silent.length = 0;
  const started = performance.now();
  const response = await t.request("/control/action/power/_status", {
    method: "POST",
    json: { control: { power: { status: { hostlist: `bench[001-${String(total).padStart(3, "0")}]` } } } },
  });
  const requestIdMs = performance.now() - started;
  if (response.status !== 200) throw new Error(`POST returned ${response.status}: ${await response.text()}`);
  const { request_id: requestId } = await response.json();

  let firstResultMs = Number.NaN;
  let doneMs = Number.NaN;
  const seen = new Set<string>();
  let failed = 0;
  // Polls like luna2-cli until the job is gone (404), so the next run starts a new job.
  while (performance.now() - started < RUN_LIMIT_MS) {
    let poll: ControlStatus;
    try {
      poll = await readControlStatus(t.db, requestId);
    } catch {
      break;
    }
    const names = [...Object.keys(poll.control.power.on), ...Object.keys(poll.control.power.off), ...Object.keys(poll.control.failed)];
    if (names.length > 0 && Number.isNaN(firstResultMs)) firstResultMs = performance.now() - started;
    for (const name of names) seen.add(name);
    failed += Object.keys(poll.control.failed).length;
    if (seen.size === total && Number.isNaN(doneMs)) doneMs = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  if (seen.size !== total) throw new Error(`Only ${seen.size} of ${total} nodes reported within ${RUN_LIMIT_MS} ms`);
  return {
    liveCallMs: median(callDurations.live),
    silentCallMs: median(callDurations.silent),
    requestIdMs,
    firstResultMs,
    doneMs,
    ok: total - failed,
    failed,
  };
}

async function main(): Promise<void> {
  const runs = Math.min(Math.max(Number(process.argv[2] ?? 3), 1), 10);
  const total = LIVE + SILENT;
  const liveAddresses = Array.from({ length: LIVE }, (_, index) => liveAddress(index));
  const silentAddresses = Array.from({ length: SILENT }, (_, index) => silentAddress(index));
  const port = pickSimulatorPort([...liveAddresses, ...silentAddresses]);

  const simulators: SimulatedBmc[] = [];
  const t = await createTestApp({
    configExtra: `[BMCCONTROL]\nPORT = ${port}\nTIMEOUT = ${TIMEOUT_SECONDS}s\nRETRIES = ${RETRIES}\nBMC_BATCH_SIZE = ${FAN_OUT}`,
  });
  t.hardware.reply = loopbackOnly;
  const loadBefore = loadavg()[0];
  try {
    const startupStarted = performance.now();
    for (let index = 0; index < LIVE; index += START_BATCH) {
      const batch = liveAddresses.slice(index, index + START_BATCH).map((address) => ({ address, port, password: PASSWORD, power: "on" as const }));
      simulators.push(...(await startSimulators(batch)));
    }
    const startupMs = performance.now() - startupStarted;
    await addNodes(t, [...liveAddresses, ...silentAddresses]);

    const soloCallMs = await timeSoloCalls(liveAddresses[0], port);
    const results: RunResult[] = [];
    for (let run = 0; run < runs; run++) {
      const result = await runOnce(t, total);
      console.log(`run ${run + 1}: ipmitool ${result.liveCallMs.toFixed(0)} ms live, ${result.silentCallMs.toFixed(0)} ms silent, request_id ${result.requestIdMs.toFixed(1)} ms, first result ${result.firstResultMs.toFixed(0)} ms, done ${(result.doneMs / 1000).toFixed(2)} s, ${result.ok} ok, ${result.failed} failed`);
      results.push(result);
    }
    writeReport(results, soloCallMs, startupMs, loadBefore, loadavg()[0]);
  } finally {
    await Promise.all(simulators.map((simulator) => simulator.stop()));
    await t.close();
  }
}

/** Median of 5 sequential calls to one simulator while nothing else of this script runs. */
async function timeSoloCalls(address: string, port: number): Promise<number> {
  const target: BmcTarget = {
    address,
    port,
    username: "admin",
    password: PASSWORD,
    cipherSuite: 3,
    privilege: "ADMINISTRATOR",
    timeoutSeconds: TIMEOUT_SECONDS,
    retries: RETRIES,
  };
  const durations: number[] = [];
  for (let call = 0; call < 5; call++) {
    const started = performance.now();
    await runIpmiPower({ run: loopbackOnly }, target, "status");
    durations.push(performance.now() - started);
  }
  return median(durations);
}

function writeReport(results: RunResult[], soloCallMs: number, startupMs: number, loadBefore: number, loadAfter: number): void {
  const silentCallSeconds = 2 * TIMEOUT_SECONDS;
  const bound = Math.ceil((LIVE + SILENT) / FAN_OUT) * silentCallSeconds;
  const row = (label: string, values: number[], unit: "ms" | "s", target: string) => {
    const value = median(values);
    const formatted = unit === "s" ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`;
    const all = values.map((item) => (unit === "s" ? (item / 1000).toFixed(2) : item.toFixed(1))).join(", ");
    return `| ${label} | ${formatted} | ${all} | ${target} |`;
  };
  const text = `# Benchmark: bulk power status

Command: \`${COMMAND}\` (optional argument: number of runs, default 3).

Setup: one in-process daemon (\`app.request\`, no sockets) on a temporary libSQL file database,
with ${LIVE + SILENT} nodes \`bench[001-${LIVE + SILENT}]\`. ${LIVE} BMCs are real \`ipmi_sim\` (OpenIPMI) simulators,
one process each on 127.0.1.1-${LIVE}; ${SILENT} BMCs point at 127.0.2.1-${SILENT}, where nothing listens, so they
never answer. Every call is a real \`ipmitool -I lanplus ... -C 3 -N ${TIMEOUT_SECONDS} -R ${RETRIES} chassis power status\`,
${FAN_OUT} at a time (\`BMC_BATCH_SIZE = ${FAN_OUT}\`). The BMC setup uses cipher suite 3, so each BMC gets
one call; with the default suite 17 every simulator would first reject 17 (about 25 ms more each).
A silent BMC costs about ${silentCallSeconds} s per call (ipmitool 1.8.19 with -N ${TIMEOUT_SECONDS} -R ${RETRIES}).
Results are read with \`readControlStatus\` (the rolling status of the job) every ${POLL_MS} ms.

Machine: ${cpus().length} x ${cpus()[0]?.model.trim() ?? "unknown CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}.
Measured ${new Date().toISOString().slice(0, 10)}; one-minute load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after
(other processes shared the machine, so treat the numbers as upper bounds). Starting the ${LIVE}
simulators took ${(startupMs / 1000).toFixed(1)} s and is not part of the measurements.

| Measurement | Median of ${results.length} | Runs | Target |
|---|---|---|---|
${row("POST /control/action/power/_status until the request_id arrives", results.map((item) => item.requestIdMs), "ms", "< 100 ms")}
${row("First node result in the rolling status", results.map((item) => item.firstResultMs), "ms", "< 2 s")}
${row(`All ${LIVE + SILENT} results read`, results.map((item) => item.doneMs), "s", `< ceil(${LIVE + SILENT} / ${FAN_OUT}) x ${silentCallSeconds} s = ${bound} s`)}
${row("One ipmitool call to a simulator (median within the run)", results.map((item) => item.liveCallMs), "ms", "")}
${row("One ipmitool call to a silent address (median within the run)", results.map((item) => item.silentCallMs), "s", "")}

Results per run: ${[...new Set(results.map((item) => `${item.ok} ok and ${item.failed} failed`))].join("; ")} (each node reported once).

The fan-out is a pool, not rounds: a slot freed by a fast BMC takes the next node at once. A run
therefore takes about (${LIVE} x live call + ${SILENT} x silent call) / ${FAN_OUT} slots. With the medians of the first run
that is ${((LIVE * results[0].liveCallMs + SILENT * results[0].silentCallMs) / FAN_OUT / 1000).toFixed(1)} s. One call to a simulator alone (median of 5 sequential calls before
the runs) took ${soloCallMs.toFixed(0)} ms, so the longer calls inside the runs come from ${FAN_OUT} parallel ipmitool
processes and the machine's load. The bound in the third row is the worst case where every node
is silent.
`;
  writeFileSync(REPORT, text);
  console.log(`Wrote ${REPORT}`);
}

await main();
