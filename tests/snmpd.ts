import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/** One port of a fake switch: its BRIDGE-MIB port number, IF-MIB ifIndex and ifName. */
export interface FakePort {
  bridgePort: number;
  ifIndex: number;
  /** ifName; the switch has no ifName row for the port when it is not given. */
  name?: string;
}

/** One forwarding database entry: a MAC address learned on a bridge port. */
export interface FakeFdbEntry {
  mac: string;
  bridgePort: number;
  /** Q-BRIDGE filtering database id (the VLAN); 1 when not given. */
  vlan?: number;
}

/**
 * What a fake switch serves. The forwarding database goes into the Q-BRIDGE table
 * dot1qTpFdbPort unless `table` is "bridge", which puts it into the BRIDGE-MIB table
 * dot1dTpFdbPort as switches without VLAN support do.
 */
export interface FakeSwitch {
  ports: FakePort[];
  fdb: FakeFdbEntry[];
  table?: "qbridge" | "bridge";
}

const BRIDGE_MIB = ".1.3.6.1.2.1.17";
const IF_NAME = ".1.3.6.1.2.1.31.1.1.1.1";
const BASE_PORT_IF_INDEX = ".1.3.6.1.2.1.17.1.4.1.2";
const Q_BRIDGE_FDB_PORT = ".1.3.6.1.2.1.17.7.1.2.2.1.2";
const BRIDGE_FDB_PORT = ".1.3.6.1.2.1.17.4.3.1.2";
const READY_TIMEOUT_MS = 10_000;

// The pass_persist program snmpd runs. It reads the fixture file on every request, so a test can
// move a MAC address to another port while snmpd runs. Plain JavaScript, run by the `node` on PATH.
const PASS_PERSIST_PROGRAM = `
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

const [fixtureFile, root] = process.argv.slice(2);
const parts = (oid) => oid.split(".").filter((part) => part !== "").map(Number);
const rootParts = parts(root);
const inRoot = (oid) => rootParts.every((part, index) => parts(oid)[index] === part);
function compare(left, right) {
  const a = parts(left);
  const b = parts(right);
  for (let index = 0; index < Math.min(a.length, b.length); index++) {
    if (a[index] !== b[index]) return a[index] - b[index];
  }
  return a.length - b.length;
}
function rows() {
  return JSON.parse(readFileSync(fixtureFile, "utf8")).filter(([oid]) => inRoot(oid)).sort((x, y) => compare(x[0], y[0]));
}
function reply(lines) {
  process.stdout.write(lines.join("\\n") + "\\n");
}

let command = null;
let oid = null;
createInterface({ input: process.stdin }).on("line", (line) => {
  if (command === null) {
    if (line === "PING") reply(["PONG"]);
    else if (["get", "getnext", "set"].includes(line)) command = line;
    return;
  }
  if (command === "set") {
    if (oid === null) {
      oid = line;
      return;
    }
    reply(["not-writable"]);
  } else {
    const table = rows();
    const row = command === "get" ? table.find(([candidate]) => compare(candidate, line) === 0) : table.find(([candidate]) => compare(candidate, line) > 0);
    reply(row ? row : ["NONE"]);
  }
  command = null;
  oid = null;
});
`;

function macOctets(mac: string): string {
  return mac.split(/[:-]/).map((octet) => parseInt(octet, 16)).join(".");
}

/** Renders a fake switch as [oid, type, value] rows in pass_persist terms. */
export function switchRows(fake: FakeSwitch): [string, string, string][] {
  const rows: [string, string, string][] = [];
  for (const port of fake.ports) {
    rows.push([`${BASE_PORT_IF_INDEX}.${port.bridgePort}`, "integer", String(port.ifIndex)]);
    if (port.name !== undefined) rows.push([`${IF_NAME}.${port.ifIndex}`, "string", port.name]);
  }
  for (const entry of fake.fdb) {
    const oid = fake.table === "bridge" ? `${BRIDGE_FDB_PORT}.${macOctets(entry.mac)}` : `${Q_BRIDGE_FDB_PORT}.${entry.vlan ?? 1}.${macOctets(entry.mac)}`;
    rows.push([oid, "integer", String(entry.bridgePort)]);
  }
  return rows;
}

/** Returns a UDP port on 127.0.0.1 that was free a moment ago. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

function findOnPath(program: string): string {
  for (const directory of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(directory, program);
    if (directory !== "" && existsSync(candidate)) return candidate;
  }
  for (const directory of ["/usr/sbin", "/usr/bin", "/usr/local/bin"]) {
    if (existsSync(join(directory, program))) return join(directory, program);
  }
  throw new Error(`${program} is not installed: install the Debian packages snmpd and snmp, and Node.js`);
}

/** A running snmpd that serves one fake switch on 127.0.0.1. */
export interface FakeSwitchAgent {
  /** `127.0.0.1:<port>`, the form snmpwalk takes. */
  address: string;
  port: number;
  community: string;
  /** Replaces what the switch serves, from the next SNMP request on. */
  update(fake: FakeSwitch): void;
  /** Stops snmpd by its process id and removes its files. */
  stop(): Promise<void>;
}

/** Starts snmpd on a free UDP port of 127.0.0.1 answering `community` with the fake switch. */
export async function startFakeSwitch(fake: FakeSwitch, community: string): Promise<FakeSwitchAgent> {
  const directory = mkdtempSync(join(tmpdir(), "luna2-snmpd-"));
  const fixture = join(directory, "fixture.json");
  const update = (next: FakeSwitch) => {
    // Written whole and renamed, so the program never reads half a file.
    writeFileSync(`${fixture}.partial`, JSON.stringify(switchRows(next)));
    renameSync(`${fixture}.partial`, fixture);
  };
  update(fake);
  const program = join(directory, "fake-switch.mjs");
  writeFileSync(program, PASS_PERSIST_PROGRAM);

  const port = await freeUdpPort();
  const node = findOnPath("node");
  const config = join(directory, "snmpd.conf");
  writeFileSync(
    config,
    [
      `agentaddress udp:127.0.0.1:${port}`,
      `rocommunity ${community} 127.0.0.1`,
      `pass_persist ${BRIDGE_MIB} ${node} ${program} ${fixture} ${BRIDGE_MIB}`,
      `pass_persist ${IF_NAME} ${node} ${program} ${fixture} ${IF_NAME}`,
      "",
    ].join("\n"),
  );
  const log = join(directory, "snmpd.log");
  // -I -smux keeps snmpd from also listening on TCP 0.0.0.0:199.
  const child: ChildProcess = spawn(
    findOnPath("snmpd"),
    ["-f", "-C", "-c", config, "-I", "-smux", "-Lf", log, "-p", join(directory, "snmpd.pid")],
    {
      env: { ...process.env, MIBS: "", MIBDIRS: "/nonexistent", SNMP_PERSISTENT_DIR: directory },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, "SIGTERM");
      await exited;
    }
    rmSync(directory, { recursive: true, force: true });
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  const readLog = () => (existsSync(log) ? readFileSync(log, "utf8") : "");
  while (!/NET-SNMP version/.test(readLog())) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const output = `${readLog()}${stderr}`;
      await stop();
      throw new Error(`snmpd did not start on 127.0.0.1:${port}: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { address: `127.0.0.1:${port}`, port, community, update, stop };
}
