import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { eq } from "drizzle-orm";
import { ipAddress, network, node, switchDevice } from "../lib/db/schema/index.ts";
import { DomainError } from "../lib/errors.ts";
import { type CommandResult, type CommandSpec, type Hardware, systemHardware } from "../lib/hardware/index.ts";
import { CommandError } from "../lib/hardware/command.ts";
import { parseWalk, snmpAgentAddress, SnmpError, snmpWalk } from "../lib/hardware/snmp.ts";
import { findNodeBySwitchPort, findSwitchPort, IF_NAME_OID, locateNodeBySwitchPort, MAX_MACS_ON_NODE_PORT, Q_BRIDGE_FDB_PORT_OID } from "../lib/switch-port.ts";
import { createTestApp, type TestApp } from "./helpers.ts";
import { type FakeSwitch, type FakeSwitchAgent, startFakeSwitch } from "./snmpd.ts";

const COMMUNITY = "s3cret-read-community";
const NODE_MAC = "52:54:00:aa:00:05";

/** Real snmpwalk runs, recorded so a test can check the argv the adapter built. */
class RecordingSystemHardware implements Hardware {
  readonly calls: CommandSpec[] = [];

  run(spec: CommandSpec): Promise<CommandResult> {
    this.calls.push(spec);
    return systemHardware.run(spec);
  }
}

/** Builds a switch with node ports ge-0/0/1..8 (bridge ports 1..8, ifIndex 501..508) and uplink xe-0/1/0. */
function fakeSwitch(fdb: FakeSwitch["fdb"], table?: FakeSwitch["table"]): FakeSwitch {
  const ports = Array.from({ length: 8 }, (_, index) => ({ bridgePort: index + 1, ifIndex: 501 + index, name: `ge-0/0/${index + 1}` }));
  ports.push({ bridgePort: 49, ifIndex: 549, name: "xe-0/1/0" });
  return { ports, fdb, table };
}

/** Forwarding database entries for `count` other hosts on one bridge port. */
function manyMacs(bridgePort: number, count: number): FakeSwitch["fdb"] {
  return Array.from({ length: count }, (_, index) => ({ mac: `02:00:00:00:01:${index.toString(16).padStart(2, "0")}`, bridgePort }));
}

function captureLogs(records: LogRecord[]): Promise<void> {
  return configure({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["luna2"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
}

function logText(records: LogRecord[]): string {
  return records.map((record) => `${record.message.join("")} ${JSON.stringify(record.properties)}`).join("\n");
}

async function setSwitch(t: TestApp, fields: { read?: string | null; uplinkports?: string | null }): Promise<void> {
  await t.db.write((tx) => tx.update(switchDevice).set(fields).where(eq(switchDevice.name, "switch01")));
}

describe("findSwitchPort with a real snmpd", () => {
  let t: TestApp;
  let agent: FakeSwitchAgent;
  let hardware: RecordingSystemHardware;
  const records: LogRecord[] = [];
  const options = () => ({ udpPort: agent.port, timeoutSeconds: 1, retries: 0 });

  before(async () => {
    t = await createTestApp();
    agent = await startFakeSwitch(fakeSwitch([{ mac: NODE_MAC, bridgePort: 5 }]), COMMUNITY);
    await t.db.write(async (tx) => {
      const [cluster] = await tx.select().from(network).where(eq(network.name, "cluster"));
      const [row] = await tx.update(switchDevice).set({ read: COMMUNITY }).where(eq(switchDevice.name, "switch01")).returning();
      await tx.insert(ipAddress).values({ network_id: cluster.id, ipaddress: "127.0.0.1", switch_id: row.id });
    });
    await captureLogs(records);
  });
  after(async () => {
    await reset();
    await agent.stop();
    await t.close();
  });
  beforeEach(async () => {
    hardware = new RecordingSystemHardware();
    records.length = 0;
    await setSwitch(t, { read: COMMUNITY, uplinkports: "xe-0/1/0" });
  });

  const services = () => ({ db: t.db, hardware });

  test("finds a MAC on a node port", async () => {
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 5 }, ...manyMacs(49, 20)]));
    const match = await findSwitchPort(services(), NODE_MAC, options());
    assert.deepEqual(match, { switch: "switch01", port: "ge-0/0/5", portNumber: 5 });
  });

  test("runs snmpwalk with the community redacted", async () => {
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 5 }]));
    await findSwitchPort(services(), NODE_MAC, options());
    const first = hardware.calls[0];
    assert.equal(first.program, "snmpwalk");
    assert.deepEqual(first.args, ["-v2c", "-c", COMMUNITY, "-On", "-Oq", "-t", "1", "-r", "0", agent.address, Q_BRIDGE_FDB_PORT_OID]);
    assert.deepEqual(first.redactArgs, [2]);
    for (const call of hardware.calls) assert.equal(call.args[call.redactArgs![0]], COMMUNITY);
  });

  test("accepts the MAC with dashes in upper case", async () => {
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 5 }]));
    const match = await findSwitchPort(services(), NODE_MAC.toUpperCase().replaceAll(":", "-"), options());
    assert.equal(match?.port, "ge-0/0/5");
  });

  test("follows a MAC that moves to another port", async () => {
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 5 }]));
    assert.equal((await findSwitchPort(services(), NODE_MAC, options()))?.port, "ge-0/0/5");
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 7 }]));
    assert.deepEqual(await findSwitchPort(services(), NODE_MAC, options()), { switch: "switch01", port: "ge-0/0/7", portNumber: 7 });
  });

  test("MAC seen only on the uplink does not match", async () => {
    agent.update(fakeSwitch([...manyMacs(49, 20), { mac: NODE_MAC, bridgePort: 49 }]));
    assert.equal(await findSwitchPort(services(), NODE_MAC, options()), null);
  });

  const uplinkCases: { name: string; uplinkports: string }[] = [
    { name: "listed by name", uplinkports: "ge-0/0/5" },
    { name: "listed by name in other case", uplinkports: "xe-0/1/0, GE-0/0/5" },
    { name: "listed by bridge port number", uplinkports: "49,5" },
  ];
  for (const item of uplinkCases) {
    test(`uplink ${item.name} never matches`, async () => {
      await setSwitch(t, { uplinkports: item.uplinkports });
      agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 5 }]));
      assert.equal(await findSwitchPort(services(), NODE_MAC, options()), null);
    });
  }

  test(`port with more than ${MAX_MACS_ON_NODE_PORT} MACs never matches`, async () => {
    await setSwitch(t, { uplinkports: null });
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 3 }, ...manyMacs(3, MAX_MACS_ON_NODE_PORT)]));
    assert.equal(await findSwitchPort(services(), NODE_MAC, options()), null);
  });

  test(`port with ${MAX_MACS_ON_NODE_PORT} MACs in two VLANs matches`, async () => {
    agent.update(fakeSwitch([
      { mac: NODE_MAC, bridgePort: 3, vlan: 1 },
      { mac: NODE_MAC, bridgePort: 3, vlan: 20 },
      ...manyMacs(3, MAX_MACS_ON_NODE_PORT - 1),
    ]));
    assert.deepEqual(await findSwitchPort(services(), NODE_MAC, options()), { switch: "switch01", port: "ge-0/0/3", portNumber: 3 });
  });

  test("falls back to the BRIDGE-MIB table", async () => {
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 2 }, ...manyMacs(49, 5)], "bridge"));
    assert.deepEqual(await findSwitchPort(services(), NODE_MAC, options()), { switch: "switch01", port: "ge-0/0/2", portNumber: 2 });
    assert.deepEqual(hardware.calls.map((call) => call.args.at(-1)), [
      Q_BRIDGE_FDB_PORT_OID,
      ".1.3.6.1.2.1.17.4.3.1.2",
      ".1.3.6.1.2.1.17.1.4.1.2.2",
      `${IF_NAME_OID}.502`,
    ]);
  });

  test("port without ifName is named by its number", async () => {
    const fake = fakeSwitch([{ mac: NODE_MAC, bridgePort: 12 }]);
    fake.ports.push({ bridgePort: 12, ifIndex: 900 });
    agent.update(fake);
    assert.deepEqual(await findSwitchPort(services(), NODE_MAC, options()), { switch: "switch01", port: "12", portNumber: 12 });
  });

  test("locates the node assigned to the port", async () => {
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 5 }]));
    const [row] = await t.db.orm.select({ id: node.id, switchId: switchDevice.id }).from(node).innerJoin(switchDevice, eq(switchDevice.name, "switch01")).where(eq(node.name, "node003"));
    assert.equal(await locateNodeBySwitchPort(services(), NODE_MAC, options()), null);

    await t.db.write((tx) => tx.update(node).set({ switch_id: row.switchId, switchport: "5" }).where(eq(node.id, row.id)));
    try {
      assert.equal(await locateNodeBySwitchPort(services(), NODE_MAC, options()), row.id);
      agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 6 }]));
      assert.equal(await locateNodeBySwitchPort(services(), NODE_MAC, options()), null);
    } finally {
      await t.db.write((tx) => tx.update(node).set({ switch_id: null, switchport: null }).where(eq(node.id, row.id)));
    }
  });

  test("unknown MAC returns null", async () => {
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 5 }]));
    assert.equal(await findSwitchPort(services(), "52:54:00:aa:00:99", options()), null);
  });

  test("invalid MAC is rejected naming it", async () => {
    await assert.rejects(findSwitchPort(services(), "52:54:00:aa:00", options()), (error: unknown) => {
      assert.ok(error instanceof DomainError);
      assert.equal(error.kind, "invalid");
      assert.match(error.message, /MAC address "52:54:00:aa:00" is invalid/);
      return true;
    });
  });

  test("wrong community times out, is logged, and stays secret", async () => {
    const wrong = "wrong-community-xyz";
    await setSwitch(t, { read: wrong });
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 5 }]));
    const started = Date.now();
    assert.equal(await findSwitchPort(services(), NODE_MAC, options()), null);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 3000, `lookup took ${elapsed} ms`);

    const text = logText(records);
    assert.match(text, /Cannot read the forwarding database of switch/);
    assert.match(text, /switch01/);
    assert.match(text, /wrong community, or the agent is unreachable/);
    assert.ok(!text.includes(wrong), `the log contains the community: ${text}`);
  });

  test("snmpWalk error message hides the community", async () => {
    const wrong = "another-wrong-community";
    const target = { host: "127.0.0.1", port: agent.port, community: wrong, timeoutSeconds: 1, retries: 0 };
    await assert.rejects(snmpWalk(hardware, target, Q_BRIDGE_FDB_PORT_OID), (error: unknown) => {
      assert.ok(error instanceof SnmpError);
      assert.equal(error.timedOut, true);
      assert.match(error.message, new RegExp(`SNMP walk of ${Q_BRIDGE_FDB_PORT_OID} on 127\\.0\\.0\\.1:${agent.port} failed`));
      assert.ok(!error.message.includes(wrong), error.message);
      assert.ok(!JSON.stringify(error).includes(wrong), "the serialised error contains the community");
      return true;
    });
  });

  test("snmpWalk of an absent subtree returns no rows", async () => {
    agent.update(fakeSwitch([{ mac: NODE_MAC, bridgePort: 5 }]));
    const target = { host: "127.0.0.1", port: agent.port, community: COMMUNITY, timeoutSeconds: 1, retries: 0 };
    assert.deepEqual(await snmpWalk(hardware, target, ".1.3.6.1.2.1.17.4.3.1.2"), []);
  });

  test("snmpWalk unquotes ifName strings", async () => {
    const fake = fakeSwitch([]);
    fake.ports[0].name = 'port "one" \\ a';
    agent.update(fake);
    const target = { host: "127.0.0.1", port: agent.port, community: COMMUNITY, timeoutSeconds: 1, retries: 0 };
    const rows = await snmpWalk(hardware, target, IF_NAME_OID);
    assert.deepEqual(rows[0], { oid: `${IF_NAME_OID}.501`, value: 'port "one" \\ a' });
    assert.equal(rows.length, 9);
  });
});

describe("findSwitchPort across switches", () => {
  // Canned snmpwalk output per agent address, so the test needs no snmpd per switch.
  let t: TestApp;
  const walks = new Map<string, Map<string, string>>();
  const hardware: Hardware = {
    async run(spec) {
      const agentAddress = spec.args.at(-2)!;
      const oid = spec.args.at(-1)!;
      const agent = walks.get(agentAddress);
      if (!agent) {
        throw new CommandError({ program: "snmpwalk", args: spec.args, exitCode: 1, signal: null, timedOut: false, durationMs: 1000, stderr: `Timeout: No Response from ${agentAddress}`, stdout: "" });
      }
      return { exitCode: 0, stdout: agent.get(oid) ?? `${oid} No Such Object available on this agent at this OID\n`, stderr: "", durationMs: 1 };
    },
  };
  const fdbLine = (mac: string, port: number) => `${Q_BRIDGE_FDB_PORT_OID}.1.${mac.split(":").map((octet) => parseInt(octet, 16)).join(".")} ${port}`;

  before(async () => {
    t = await createTestApp();
    await t.db.write(async (tx) => {
      const [cluster] = await tx.select().from(network).where(eq(network.name, "cluster"));
      const [first] = await tx.select().from(switchDevice).where(eq(switchDevice.name, "switch01"));
      const [second] = await tx.insert(switchDevice).values({ name: "switch02", read: "public", uplinkports: "49" }).returning();
      const [third] = await tx.insert(switchDevice).values({ name: "switch03", read: "public" }).returning();
      await tx.insert(switchDevice).values({ name: "switch-without-address" });
      await tx.insert(ipAddress).values([
        { network_id: cluster.id, ipaddress: "10.141.250.1", switch_id: first.id },
        { network_id: cluster.id, ipaddress: "10.141.250.2", switch_id: second.id },
        { network_id: cluster.id, ipaddress_ipv6: "fd00::3", switch_id: third.id },
      ]);
    });
    walks.set("10.141.250.1", new Map([[Q_BRIDGE_FDB_PORT_OID, [fdbLine(NODE_MAC, 48), fdbLine("02:00:00:00:00:01", 48), fdbLine("02:00:00:00:00:02", 48)].join("\n")]]));
    walks.set("10.141.250.2", new Map([
      [Q_BRIDGE_FDB_PORT_OID, [fdbLine(NODE_MAC, 49), fdbLine(NODE_MAC, 7)].join("\n")],
      [".1.3.6.1.2.1.17.1.4.1.2.7", ".1.3.6.1.2.1.17.1.4.1.2.7 7"],
      [`${IF_NAME_OID}.7`, `${IF_NAME_OID}.7 "Gi1/0/7"`],
    ]));
  });
  after(() => t.close());

  test("skips uplinks, crowded ports and silent switches", async () => {
    assert.deepEqual(await findSwitchPort({ db: t.db, hardware }, NODE_MAC), { switch: "switch02", port: "Gi1/0/7", portNumber: 7 });
  });

  test("walks only switches with an address, IPv6 in brackets", async () => {
    const agents: string[] = [];
    await findSwitchPort({ db: t.db, hardware: { run: (spec) => (agents.push(spec.args.at(-2)!), hardware.run(spec)) } }, NODE_MAC);
    assert.deepEqual([...new Set(agents)].sort(), ["10.141.250.1", "10.141.250.2", "udp6:[fd00::3]"]);
  });

  test("two node ports: fewest MACs wins", async () => {
    walks.set("udp6:[fd00::3]", new Map([
      [Q_BRIDGE_FDB_PORT_OID, [fdbLine(NODE_MAC, 2), fdbLine("02:00:00:00:00:09", 2)].join("\n")],
    ]));
    try {
      assert.deepEqual(await findSwitchPort({ db: t.db, hardware }, NODE_MAC), { switch: "switch02", port: "Gi1/0/7", portNumber: 7 });
    } finally {
      walks.delete("udp6:[fd00::3]");
    }
  });
});

describe("findNodeBySwitchPort", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    await t.db.write(async (tx) => {
      const [row] = await tx.select().from(switchDevice).where(eq(switchDevice.name, "switch01"));
      await tx.update(node).set({ switch_id: row.id, switchport: "ge-0/0/5" }).where(eq(node.name, "node001"));
      await tx.update(node).set({ switch_id: row.id, switchport: "7" }).where(eq(node.name, "node002"));
      await tx.update(node).set({ switch_id: row.id, switchport: "Gi1/0/9" }).where(eq(node.name, "node003"));
      await tx.update(node).set({ switch_id: row.id, switchport: "gi1/0/9" }).where(eq(node.name, "node004"));
    });
  });
  after(() => t.close());

  const cases: { name: string; switchName: string; port: string | number | (string | number)[]; expected: string | null }[] = [
    { name: "port name", switchName: "switch01", port: "ge-0/0/5", expected: "node001" },
    { name: "port name in other case", switchName: "switch01", port: "GE-0/0/5", expected: "node001" },
    { name: "name and number of a match", switchName: "switch01", port: ["ge-0/0/7", 7], expected: "node002" },
    { name: "number with a leading zero", switchName: "switch01", port: "07", expected: "node002" },
    { name: "free port", switchName: "switch01", port: ["ge-0/0/8", 8], expected: null },
    { name: "unknown switch", switchName: "switch99", port: "ge-0/0/5", expected: null },
  ];
  for (const item of cases) {
    test(`${item.name} gives ${item.expected}`, async () => {
      const found = await findNodeBySwitchPort(t.db.orm, item.switchName, item.port);
      assert.equal(found?.name ?? null, item.expected);
    });
  }

  test("returns the node id", async () => {
    const [row] = await t.db.orm.select({ id: node.id }).from(node).where(eq(node.name, "node001"));
    assert.deepEqual(await findNodeBySwitchPort(t.db.orm, "switch01", "ge-0/0/5"), { id: row.id, name: "node001" });
  });

  test("port claimed by two nodes is a conflict", async () => {
    await assert.rejects(findNodeBySwitchPort(t.db.orm, "switch01", "Gi1/0/9"), (error: unknown) => {
      assert.ok(error instanceof DomainError);
      assert.equal(error.kind, "conflict");
      assert.equal(error.message, 'Switch "switch01" port "Gi1/0/9" is assigned to several nodes: node003, node004');
      return true;
    });
  });
});

describe("parseWalk", () => {
  test("reads numbers, strings and absent subtrees", () => {
    const output = [
      ".1.3.6.1.2.1.17.1.4.1.2.1 501",
      '.1.3.6.1.2.1.31.1.1.1.1.501 "ge-0/0/1"',
      '.1.3.6.1.2.1.31.1.1.1.1.502 ""',
      ".1.3.6.1.2.1.17.4.3.1.2 No Such Instance currently exists at this OID",
      ".1.3.6.1.2.1.17.7 No Such Object available on this agent at this OID",
      "",
    ].join("\n");
    assert.deepEqual(parseWalk(output), [
      { oid: ".1.3.6.1.2.1.17.1.4.1.2.1", value: "501" },
      { oid: ".1.3.6.1.2.1.31.1.1.1.1.501", value: "ge-0/0/1" },
      { oid: ".1.3.6.1.2.1.31.1.1.1.1.502", value: "" },
    ]);
  });

  test("agent address forms", () => {
    assert.equal(snmpAgentAddress({ host: "10.0.0.1" }), "10.0.0.1");
    assert.equal(snmpAgentAddress({ host: "10.0.0.1", port: 1161 }), "10.0.0.1:1161");
    assert.equal(snmpAgentAddress({ host: "fd00::1", port: 161 }), "udp6:[fd00::1]:161");
  });
});
