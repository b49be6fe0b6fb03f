import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, beforeEach, describe, test } from "node:test";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { and, eq } from "drizzle-orm";
import { bmcsetup, ipAddress, network, node, nodeGroup, nodeInterface } from "../lib/db/schema/index.ts";
import { type CommandSpec, systemHardware } from "../lib/hardware/index.ts";
import { type ControlStatus, readControlStatus } from "../lib/power.ts";
import { createTestApp, type TestApp } from "./helpers.ts";
import { pickSimulatorPort, requireLoopback, type SimulatedBmc, startSimulators, udpPortBound } from "./ipmi-sim.ts";

/** Spaces, both quotes, `$` and `;`: every character a shell would act on. 10 bytes, within IPMI's 20. */
const PASSWORD = `pa ss'"$;x`;

/** Simulated BMCs of node001..node004; node005 and node006 point at addresses where nothing listens. */
const LIVE_ADDRESSES = ["127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44"];
const SILENT_ADDRESSES = ["127.0.0.48", "127.0.0.49"];

/** Runs real ipmitool, but only against 127.0.0.0/8. */
function loopbackOnly(spec: CommandSpec) {
  const address = spec.args[spec.args.indexOf("-H") + 1];
  requireLoopback(address);
  return systemHardware.run(spec);
}

function suitesFor(t: TestApp, address: string): string[] {
  return t.hardware.calls.filter((call) => call.args.includes(address)).map((call) => call.args[call.args.indexOf("-C") + 1]);
}

/** Points the BMC interface of `name` at `address`, creating the node with the group's interfaces when missing. */
async function setBmcAddress(t: TestApp, name: string, address: string) {
  await t.db.write(async (tx) => {
    let [row] = await tx.select({ id: node.id }).from(node).where(eq(node.name, name));
    if (!row) {
      const [group] = await tx.select({ id: nodeGroup.id }).from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
      [row] = await tx.insert(node).values({ name, group_id: group.id }).returning({ id: node.id });
    }
    let [bmc] = await tx.select({ id: nodeInterface.id }).from(nodeInterface).where(and(eq(nodeInterface.node_id, row.id), eq(nodeInterface.interface, "BMC")));
    if (!bmc) [bmc] = await tx.insert(nodeInterface).values({ node_id: row.id, interface: "BMC" }).returning({ id: nodeInterface.id });

    await tx.delete(ipAddress).where(eq(ipAddress.node_interface_id, bmc.id));
    const [ipmi] = await tx.select({ id: network.id }).from(network).where(eq(network.name, "ipmi"));
    await tx.insert(ipAddress).values({ network_id: ipmi.id, ipaddress: address, node_interface_id: bmc.id });
  });
}

describe("power control against ipmi_sim", () => {
  let t: TestApp;
  let simulators: SimulatedBmc[];
  let records: LogRecord[];

  before(async () => {
    const port = pickSimulatorPort([...LIVE_ADDRESSES, ...SILENT_ADDRESSES]);
    simulators = await startSimulators(LIVE_ADDRESSES.map((address) => ({ address, port, password: PASSWORD })));
    t = await createTestApp({ configExtra: `[BMCCONTROL]\nPORT = ${port}\nTIMEOUT = 1s\nRETRIES = 1\nBMC_BATCH_SIZE = 3` });
    t.hardware.reply = loopbackOnly;

    await t.db.write((tx) => tx.update(bmcsetup).set({ password: PASSWORD }).where(eq(bmcsetup.name, "default-bmcsetup")));
    for (const [index, address] of [...LIVE_ADDRESSES, ...SILENT_ADDRESSES].entries()) {
      await setBmcAddress(t, `node00${index + 1}`, address);
    }

    records = [];
    await configure({
      reset: true,
      sinks: { memory: (record) => records.push(record) },
      loggers: [{ category: ["luna2"], lowestLevel: "debug", sinks: ["memory"] }],
    });
  });
  after(async () => {
    await reset();
    await Promise.all((simulators ?? []).map((simulator) => simulator.stop()));
    await t?.close();
  });
  beforeEach(() => {
    t.hardware.calls.length = 0;
  });

  test("silent addresses have no listener", () => {
    const port = simulators[0].port;
    for (const address of SILENT_ADDRESSES) assert.equal(udpPortBound(address, port), false, address);
  });

  test("on and off change the simulator's state", async () => {
    const [bmc] = simulators;
    assert.equal((await t.request("/control/action/power/node001/_on")).status, 204);
    assert.equal(bmc.powerState(), "on");

    const status = await t.request("/control/action/power/node001/_status");
    assert.equal(status.status, 200);
    assert.deepEqual(await status.json(), { control: { power: "on" } });

    assert.equal((await t.request("/control/action/power/node001/_off")).status, 204);
    assert.equal(bmc.powerState(), "off");
    const spec = await t.request("/control/power/node001");
    assert.deepEqual(await spec.json(), { control: { power: "off" } });
  });

  const chassisCalls: { action: string; call: string }[] = [
    { action: "reset", call: "set reset 1" },
    { action: "cycle", call: "set power 0" },
    { action: "soft", call: "set shutdown 1" },
    { action: "identify", call: "set identify 15 0" },
    { action: "noidentify", call: "set identify 0 0" },
  ];
  for (const { action, call } of chassisCalls) {
    test(`_${action} reaches chassis control`, async () => {
      const bmc = simulators[1];
      const before = bmc.chassisLog().length;
      assert.equal((await t.request(`/control/action/power/node002/_${action}`)).status, 204);
      assert.ok(bmc.chassisLog().slice(before).includes(call), bmc.chassisLog().slice(before).join("; "));
    });
  }

  test("suite 17 rejected, falls back to 3", async () => {
    assert.equal((await t.request("/control/action/power/node003/_status")).status, 200);
    assert.deepEqual(suitesFor(t, LIVE_ADDRESSES[2]), ["17", "3"]);
  });

  test("silent BMC times out with 503", async () => {
    const started = performance.now();
    const response = await t.request("/control/action/power/node005/_on");
    const elapsed = performance.now() - started;
    assert.equal(response.status, 503);
    const { message } = await response.json();
    assert.match(message, /Cannot run power on on node "node005": BMC 127\.0\.0\.48 did not respond: ipmitool exited with code 1/);
    assert.match(message, /Unable to establish IPMI v2/);
    assert.deepEqual(suitesFor(t, "127.0.0.48"), ["17"], "no fallback after a timeout");
    assert.ok(elapsed < 8000, `took ${elapsed} ms with -N 1 -R 1`);
  });

  test("wrong password gives 503 with stderr", async () => {
    const [wrong] = await t.db.write((tx) =>
      tx.insert(bmcsetup).values({ name: "wrong-password", username: "admin", password: "not the password" }).returning());
    await t.db.write((tx) => tx.update(node).set({ bmcsetup_id: wrong.id }).where(eq(node.name, "node004")));
    try {
      const response = await t.request("/control/action/power/node004/_on");
      assert.equal(response.status, 503);
      const { message } = await response.json();
      assert.match(message, /BMC 127\.0\.0\.44 rejected the user name or password: ipmitool exited with code 1: .*RAKP 2 HMAC is invalid/);
      assert.match(message, /BMC setup "wrong-password"/);
      assert.equal(simulators[3].powerState(), "off");
    } finally {
      await t.db.write((tx) => tx.update(node).set({ bmcsetup_id: null }).where(eq(node.name, "node004")));
    }
  });

  test("failing chassis control gives 503", async () => {
    const bmc = simulators[3];
    bmc.setFailing(true);
    try {
      const response = await t.request("/control/action/power/node004/_on");
      assert.equal(response.status, 503);
      assert.match((await response.json()).message, /BMC 127\.0\.0\.44 rejected the command: .*Unspecified error/);
    } finally {
      bmc.setFailing(false);
    }
  });

  test("password stays out of argv of running ipmitool", async () => {
    // The silent BMC keeps ipmitool running for about 2 s, long enough to read /proc.
    const request = t.request("/control/action/power/node006/_status");
    const seen: { cmdline: string; environ: string }[] = [];
    const deadline = Date.now() + 1500;
    while (seen.length === 0 && Date.now() < deadline) {
      for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
        try {
          const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
          const argv = cmdline.split("\0");
          if (argv[0].split("/").pop() === "ipmitool" && argv.includes("127.0.0.49")) {
            seen.push({ cmdline, environ: readFileSync(`/proc/${pid}/environ`, "utf8") });
          }
        } catch {
          // The process ended between listing and reading.
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal((await request).status, 503);

    assert.equal(seen.length, 1, "one ipmitool process was seen");
    assert.ok(!seen[0].cmdline.includes("pa ss"), seen[0].cmdline.replaceAll("\0", " "));
    assert.ok(seen[0].cmdline.split("\0").includes("-E"));
    assert.ok(seen[0].environ.split("\0").includes(`IPMI_PASSWORD=${PASSWORD}`));
  });

  test("bulk job gives one result per node", async () => {
    const response = await t.request("/control/action/power/_on", {
      method: "POST",
      json: { control: { power: { on: { hostlist: "node[001-006]" } } } },
    });
    assert.equal(response.status, 200);
    const { request_id } = await response.json();

    const polls: ControlStatus[] = [];
    for (let i = 0; i < 100; i++) {
      try {
        polls.push(await readControlStatus(t.db, request_id));
      } catch (error) {
        assert.match(String(error), /No data for this request/);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const seen = polls.flatMap((poll) => [...Object.keys(poll.control.power.ok), ...Object.keys(poll.control.failed)]);
    assert.deepEqual([...seen].sort(), ["node001", "node002", "node003", "node004", "node005", "node006"]);
    const ok = Object.assign({}, ...polls.map((poll) => poll.control.power.ok));
    assert.deepEqual(Object.keys(ok).sort(), ["node001", "node002", "node003", "node004"]);
    const failed = Object.assign({}, ...polls.map((poll) => poll.control.failed));
    assert.match(failed.node005, /BMC 127\.0\.0\.48 did not respond/);
    assert.match(failed.node006, /BMC 127\.0\.0\.49 did not respond/);
    const firstOk = polls.findIndex((poll) => Object.keys(poll.control.power.ok).length > 0);
    const firstSilent = polls.findIndex((poll) => "node005" in poll.control.failed || "node006" in poll.control.failed);
    assert.ok(firstOk >= 0, "answering BMCs were reported");
    assert.ok(firstOk < firstSilent, `results arrive while the job runs: first ok in poll ${firstOk}, first timeout in poll ${firstSilent}`);
    for (const simulator of simulators) assert.equal(simulator.powerState(), "on", simulator.address);
  });

  test("logs never contain the password", () => {
    assert.ok(records.length > 0);
    const text = JSON.stringify(records.map((record) => ({ message: record.message, properties: record.properties })));
    assert.ok(!text.includes("pa ss"));
  });
});
