import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { eq } from "drizzle-orm";
import { bmcsetup, ipAddress, job, jobMessage, node, nodeGroup, nodeInterface } from "../lib/db/schema/index.ts";
import { CommandError, type CommandSpec } from "../lib/hardware/index.ts";
import { readControlStatus } from "../lib/power.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

/** A password with every character a shell would treat specially. */
const HARD_PASSWORD = `p w'"$;x`;

function ipmiFailure(spec: CommandSpec, stderr: string, fields: { exitCode?: number | null; timedOut?: boolean } = {}): CommandError {
  return new CommandError({
    program: spec.program,
    args: spec.args,
    exitCode: fields.exitCode === undefined ? 1 : fields.exitCode,
    signal: null,
    timedOut: fields.timedOut ?? false,
    durationMs: 30,
    stderr,
    stdout: "",
  });
}

function argAfter(spec: CommandSpec, flag: string): string | undefined {
  const index = spec.args.indexOf(flag);
  return index < 0 ? undefined : spec.args[index + 1];
}

const delay = (milliseconds: number) => new Promise((resolve) => setTimeout(resolve, milliseconds));

async function waitForJob(t: TestApp, requestId: string): Promise<string> {
  for (let i = 0; i < 500; i++) {
    const [row] = await t.db.orm.select({ state: job.state }).from(job).where(eq(job.request_id, requestId));
    if (row && (row.state === "done" || row.state === "failed")) return row.state;
    await delay(10);
  }
  throw new Error(`Job ${requestId} did not end within 5 s`);
}

async function setPassword(t: TestApp, password: string) {
  await t.db.write((tx) => tx.update(bmcsetup).set({ password }).where(eq(bmcsetup.name, "default-bmcsetup")));
}

describe("single node power routes", () => {
  let t: TestApp;
  let records: LogRecord[];
  before(async () => {
    t = await createTestApp();
    await setPassword(t, HARD_PASSWORD);
    records = [];
    await configure({
      reset: true,
      sinks: { memory: (record) => records.push(record) },
      loggers: [
        { category: ["luna2"], lowestLevel: "debug", sinks: ["memory"] },
        { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["memory"] },
      ],
    });
  });
  after(async () => {
    await reset();
    await t.close();
  });
  beforeEach(() => {
    t.hardware.calls.length = 0;
    t.hardware.reply = () => Promise.resolve({ exitCode: 0, stdout: "", stderr: "", durationMs: 1 });
  });

  test("status returns on with 200", async () => {
    t.hardware.reply = () => Promise.resolve({ exitCode: 0, stdout: "Chassis Power is on\n", stderr: "", durationMs: 1 });
    const response = await t.request("/control/action/power/node001/_status");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { control: { power: "on" } });
  });

  test("status sends the full ipmitool argv", async () => {
    t.hardware.reply = () => Promise.resolve({ exitCode: 0, stdout: "Chassis Power is off\n", stderr: "", durationMs: 1 });
    await t.request("/control/action/power/node001/_status");
    assert.equal(t.hardware.calls.length, 1);
    const [call] = t.hardware.calls;
    assert.equal(call.program, "ipmitool");
    assert.deepEqual(call.args, [
      "-I", "lanplus", "-H", "10.148.0.1", "-U", "admin", "-E",
      "-C", "17", "-L", "ADMINISTRATOR", "-N", "5", "-R", "1", "-v", "chassis", "power", "status",
    ]);
  });

  test("password travels only in the environment", async () => {
    await t.request("/control/action/power/node002/_on");
    const [call] = t.hardware.calls;
    assert.equal(call.env?.IPMI_PASSWORD, HARD_PASSWORD);
    assert.deepEqual(call.secretEnv, ["IPMI_PASSWORD"]);
    assert.ok(call.args.every((arg) => !arg.includes(HARD_PASSWORD) && !arg.includes("p w")));
    assert.ok(!call.args.includes("-P"));
  });

  const actions: { action: string; words: string[]; status: number }[] = [
    { action: "on", words: ["power", "on"], status: 204 },
    { action: "off", words: ["power", "off"], status: 204 },
    { action: "reset", words: ["power", "reset"], status: 204 },
    { action: "cycle", words: ["power", "cycle"], status: 204 },
    { action: "soft", words: ["power", "soft"], status: 204 },
    { action: "identify", words: ["identify"], status: 204 },
    { action: "noidentify", words: ["identify", "0"], status: 204 },
  ];
  for (const { action, words, status } of actions) {
    test(`_${action} runs chassis ${words.join(" ")}`, async () => {
      const response = await t.request(`/control/action/power/node003/_${action}`);
      assert.equal(response.status, status);
      assert.equal(await response.text(), "");
      const [call] = t.hardware.calls;
      assert.deepEqual(call.args.slice(call.args.indexOf("chassis") + 1), words);
      assert.equal(argAfter(call, "-H"), "10.148.0.3");
    });
  }

  test("/control/power/{hostname} returns the status", async () => {
    t.hardware.reply = () => Promise.resolve({ exitCode: 0, stdout: "Chassis Power is off\n", stderr: "", durationMs: 1 });
    const response = await t.request("/control/power/node004");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { control: { power: "off" } });
    assert.deepEqual(t.hardware.calls[0].args.slice(-3), ["chassis", "power", "status"]);
  });

  test("/control/power without a host is not served", async () => {
    const response = await t.request("/control/power");
    assert.equal(response.status, 404);
  });

  test("requires an admin token", async () => {
    const response = await t.request("/control/action/power/node001/_on", { headers: { "x-access-tokens": "" } });
    assert.equal(response.status, 401);
    assert.equal(t.hardware.calls.length, 0);
  });

  const rejected: { path: string; status: number; message: RegExp }[] = [
    { path: "/control/action/power/node009/_on", status: 404, message: /Node "node009" not found/ },
    { path: "/control/action/power/node001/_explode", status: 400, message: /unknown power action "explode": use one of on, off, status/ },
    { path: "/control/action/power/Node_1/_on", status: 400, message: /Node name "Node_1" is invalid/ },
    { path: "/control/power/node010", status: 404, message: /Node "node010" not found/ },
  ];
  for (const { path, status, message } of rejected) {
    test(`${path} gives ${status}`, async () => {
      const response = await t.request(path);
      assert.equal(response.status, status);
      assert.match((await response.json()).message, message);
      assert.equal(t.hardware.calls.length, 0);
    });
  }

  test("unreachable BMC gives 503 naming node and address", async () => {
    t.hardware.reply = (spec) => Promise.reject(ipmiFailure(spec, "Loading IANA PEN Registry...\nGet Auth Capabilities error\nError: Unable to establish IPMI v2 / RMCP+ session\n"));
    const response = await t.request("/control/action/power/node002/_off");
    assert.equal(response.status, 503);
    const { message } = await response.json();
    assert.match(message, /Cannot run power off on node "node002": BMC 10\.148\.0\.2 did not respond: ipmitool exited with code 1/);
    assert.match(message, /Get Auth Capabilities error/);
    assert.doesNotMatch(message, /IANA/);
    assert.equal(t.hardware.calls.length, 1, "a silent BMC is not retried with another suite");
  });

  test("killed ipmitool gives 503", async () => {
    t.hardware.reply = (spec) => Promise.reject(ipmiFailure(spec, "", { exitCode: null, timedOut: true }));
    const response = await t.request("/control/action/power/node002/_status");
    assert.equal(response.status, 503);
    assert.match((await response.json()).message, /BMC 10\.148\.0\.2 did not respond: ipmitool was killed after 30 ms/);
  });

  test("wrong password gives 503 with the stderr tail", async () => {
    t.hardware.reply = (spec) => Promise.reject(ipmiFailure(spec, "> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session\n"));
    const response = await t.request("/control/action/power/node001/_on");
    assert.equal(response.status, 503);
    const { message } = await response.json();
    assert.match(message, /BMC 10\.148\.0\.1 rejected the user name or password/);
    assert.match(message, /RAKP 2 HMAC is invalid/);
    assert.match(message, /check the username and password of BMC setup "default-bmcsetup"/);
    assert.equal(t.hardware.calls.length, 1);
  });

  test("rejected suite 17 falls back to 3", async () => {
    t.hardware.reply = (spec) =>
      argAfter(spec, "-C") === "17"
        ? Promise.reject(ipmiFailure(spec, "Error in open session response message : invalid authentication algorithm\n"))
        : Promise.resolve({ exitCode: 0, stdout: "Chassis Power is on\n", stderr: "", durationMs: 1 });
    const response = await t.request("/control/action/power/node001/_status");
    assert.equal(response.status, 200);
    assert.deepEqual(t.hardware.calls.map((call) => argAfter(call, "-C")), ["17", "3"]);
  });

  test("command rejected by the BMC gives 503", async () => {
    t.hardware.reply = (spec) => Promise.reject(ipmiFailure(spec, "Set Chassis Power Control to Up/On failed: Unspecified error\n"));
    const response = await t.request("/control/action/power/node001/_on");
    assert.equal(response.status, 503);
    assert.match((await response.json()).message, /BMC 10\.148\.0\.1 rejected the command: .*Unspecified error/);
  });

  test("logs never contain the password", () => {
    const text = JSON.stringify(records.map((record) => ({ message: record.message, properties: record.properties })));
    assert.ok(records.length > 0, "the failures above were logged");
    assert.ok(!text.includes("p w"), text);
  });
});

describe("BMC settings from setup and config", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ configExtra: "[BMCCONTROL]\nPORT = 16230\nPRIVILEGE = OPERATOR\nTIMEOUT = 2s\nRETRIES = 3\nCIPHER_SUITE = 3" });
  });
  after(() => t.close());
  beforeEach(() => {
    t.hardware.calls.length = 0;
  });

  test("config sets port, privilege, timeout, retries and suite", async () => {
    await t.request("/control/action/power/node001/_on");
    const [call] = t.hardware.calls;
    assert.equal(argAfter(call, "-p"), "16230");
    assert.equal(argAfter(call, "-L"), "OPERATOR");
    assert.equal(argAfter(call, "-N"), "2");
    assert.equal(argAfter(call, "-R"), "3");
    assert.equal(argAfter(call, "-C"), "3");
    assert.equal(call.timeoutMs, (2 * 10 + 5) * 1000);
  });

  test("BMC setup columns override the config", async () => {
    await t.db.write((tx) => tx.update(bmcsetup).set({ cipher_suite: 17, privilege: "USER", retries: 0, timeout: 7, username: "ops" }));
    await t.request("/control/action/power/node001/_on");
    const [call] = t.hardware.calls;
    assert.equal(argAfter(call, "-C"), "17");
    assert.equal(argAfter(call, "-L"), "USER");
    assert.equal(argAfter(call, "-N"), "7");
    assert.equal(argAfter(call, "-R"), "1", "-R 0 would mean ipmitool's default of 4 retries");
    assert.equal(argAfter(call, "-U"), "ops");
  });

  test("node bmcsetup wins over the group's", async () => {
    const [other] = await t.db.write((tx) =>
      tx.insert(bmcsetup).values({ name: "node-only", username: "nodeuser", password: "nodepass", cipher_suite: 3 }).returning());
    await t.db.write((tx) => tx.update(node).set({ bmcsetup_id: other.id }).where(eq(node.name, "node002")));
    await t.request("/control/action/power/node002/_on");
    const [call] = t.hardware.calls;
    assert.equal(argAfter(call, "-U"), "nodeuser");
    assert.equal(call.env?.IPMI_PASSWORD, "nodepass");
  });

  test("setup without password sends no -E", async () => {
    const [bare] = await t.db.write((tx) => tx.insert(bmcsetup).values({ name: "bare", username: null, password: null }).returning());
    await t.db.write((tx) => tx.update(node).set({ bmcsetup_id: bare.id }).where(eq(node.name, "node004")));
    await t.request("/control/action/power/node004/_on");
    const [call] = t.hardware.calls;
    assert.ok(!call.args.includes("-E"));
    assert.ok(!call.args.includes("-U"));
    assert.equal(call.env, undefined);
  });

  test("node without BMC address gives 404", async () => {
    const [bmc] = await t.db.orm
      .select({ id: nodeInterface.id })
      .from(nodeInterface)
      .innerJoin(node, eq(node.id, nodeInterface.node_id))
      .where(eq(node.name, "node003"));
    await t.db.write((tx) => tx.delete(ipAddress).where(eq(ipAddress.node_interface_id, bmc.id)));
    const response = await t.request("/control/action/power/node003/_on");
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /Node "node003" cannot be powered: no interface named "BMC" with an IP address/);
    assert.equal(t.hardware.calls.length, 0);
  });

  test("node without BMC setup gives 404", async () => {
    await t.db.write(async (tx) => {
      await tx.update(node).set({ bmcsetup_id: null });
      await tx.update(nodeGroup).set({ bmcsetup_id: null });
    });
    const response = await t.request("/control/action/power/node001/_status");
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /Node "node001" cannot be powered: no BMC setup on the node or its group "compute-group"/);
    assert.equal(t.hardware.calls.length, 0);
  });
});

describe("bulk power route", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ configExtra: "[BMCCONTROL]\nBMC_BATCH_SIZE = 2" });
  });
  after(() => t.close());
  beforeEach(() => {
    t.hardware.calls.length = 0;
    t.hardware.reply = () => Promise.resolve({ exitCode: 0, stdout: "", stderr: "", durationMs: 1 });
  });
  afterEach(async () => {
    // Jobs that are joined by kind and object would leak into the next test.
    await t.db.write((tx) => tx.delete(job));
  });

  const bulk = (action: string, body: unknown) => t.request(`/control/action/power/_${action}`, { method: "POST", json: body });
  const hostlistBody = (action: string, hostlist: string) => ({ control: { power: { [action]: { hostlist } } } });

  test("returns a request id at once", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    t.hardware.reply = async () => {
      await gate;
      return { exitCode: 0, stdout: "Chassis Power Control: Up/On\n", stderr: "", durationMs: 1 };
    };
    const response = await bulk("on", hostlistBody("on", "node[001-004]"));
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(typeof body.request_id, "string");
    assert.deepEqual(body.control, { power: { ok: {}, on: {}, off: {} }, failed: {} });
    assert.match(body.message, /Power on for 4 nodes started/);
    release();
    assert.equal(await waitForJob(t, body.request_id), "done");

    const status = await readControlStatus(t.db, body.request_id);
    assert.deepEqual(status.control.power.ok, { node001: "power on", node002: "power on", node003: "power on", node004: "power on" });
    assert.deepEqual(status.control.failed, {});
  });

  test("fan-out stays within the batch size", async () => {
    let running = 0;
    let peak = 0;
    t.hardware.reply = async () => {
      running++;
      peak = Math.max(peak, running);
      await delay(20);
      running--;
      return { exitCode: 0, stdout: "Chassis Power is on\n", stderr: "", durationMs: 20 };
    };
    const { request_id } = await (await bulk("status", hostlistBody("status", "node[001-004]"))).json();
    await waitForJob(t, request_id);
    assert.equal(t.hardware.calls.length, 4);
    assert.equal(peak, 2);
  });

  test("one result line per node", async () => {
    t.hardware.reply = (spec) => {
      const address = argAfter(spec, "-H");
      if (address === "10.148.0.2") return Promise.reject(ipmiFailure(spec, "Get Auth Capabilities error\nError: Unable to establish IPMI v2 / RMCP+ session\n"));
      if (address === "10.148.0.3") return Promise.resolve({ exitCode: 0, stdout: "Chassis Power is off\n", stderr: "", durationMs: 1 });
      if (address === "10.148.0.4") return Promise.resolve({ exitCode: 0, stdout: "garbage\n", stderr: "", durationMs: 1 });
      return Promise.resolve({ exitCode: 0, stdout: "Chassis Power is on\n", stderr: "", durationMs: 1 });
    };
    const { request_id } = await (await bulk("status", hostlistBody("status", "node[001-004]"))).json();
    await waitForJob(t, request_id);

    const lines = await t.db.orm.select().from(jobMessage).where(eq(jobMessage.request_id, request_id));
    const perNode = lines.map((line) => line.message.split(":")[0]).sort();
    assert.deepEqual(perNode, ["node001", "node002", "node003", "node004"]);
    assert.deepEqual(lines.map((line) => line.status).sort(), [200, 200, 500, 503]);

    const status = await readControlStatus(t.db, request_id);
    assert.deepEqual(status.control.power.on, { node001: "None" });
    assert.deepEqual(status.control.power.off, { node003: "None" });
    assert.deepEqual(Object.keys(status.control.failed).sort(), ["node002", "node004"]);
    assert.match(status.control.failed.node002, /BMC 10\.148\.0\.2 did not respond/);
    assert.equal(status.control.failed.node004, "success with unparsable output: garbage");
    await assert.rejects(readControlStatus(t.db, request_id), /No data for this request/);
  });

  test("node without BMC address is reported without a call", async () => {
    const [bmc] = await t.db.orm
      .select({ id: nodeInterface.id })
      .from(nodeInterface)
      .innerJoin(node, eq(node.id, nodeInterface.node_id))
      .where(eq(node.name, "node004"));
    const [row] = await t.db.orm.select().from(ipAddress).where(eq(ipAddress.node_interface_id, bmc.id));
    await t.db.write((tx) => tx.delete(ipAddress).where(eq(ipAddress.id, row.id)));
    try {
      const { request_id } = await (await bulk("off", hostlistBody("off", "node[003-004]"))).json();
      await waitForJob(t, request_id);
      assert.deepEqual(t.hardware.calls.map((call) => argAfter(call, "-H")), ["10.148.0.3"]);
      const status = await readControlStatus(t.db, request_id);
      assert.deepEqual(status.control.power.ok, { node003: "power off" });
      assert.deepEqual(status.control.failed, { node004: 'cannot be powered: no interface named "BMC" with an IP address' });
    } finally {
      await t.db.write((tx) => tx.insert(ipAddress).values(row));
    }
  });

  test("same request joins the running job", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    t.hardware.reply = async () => {
      await gate;
      return { exitCode: 0, stdout: "", stderr: "", durationMs: 1 };
    };
    const first = await (await bulk("cycle", hostlistBody("cycle", "node[001-002]"))).json();
    const second = await (await bulk("cycle", hostlistBody("cycle", "node001,node002"))).json();
    assert.equal(second.request_id, first.request_id);
    assert.match(second.message, /already running/);
    release();
    await waitForJob(t, first.request_id);
    assert.equal(t.hardware.calls.length, 2);
  });

  const invalidBodies: { name: string; action: string; body: unknown; status: number; message: RegExp }[] = [
    { name: "missing control", action: "on", body: { power: {} }, status: 400, message: /unknown key "power"|missing key "control"/ },
    { name: "missing hostlist", action: "on", body: { control: { power: { on: {} } } }, status: 400, message: /missing key "control\.power\.on\.hostlist"/ },
    { name: "empty hostlist", action: "on", body: hostlistBody("on", ""), status: 400, message: /must not be empty/ },
    { name: "other action in body", action: "on", body: hostlistBody("off", "node001"), status: 400, message: /exactly control\.power\.on for \/_on, not "off"/ },
    { name: "unknown action", action: "boom", body: hostlistBody("boom", "node001"), status: 400, message: /unknown power action "boom"/ },
    { name: "reversed range", action: "on", body: hostlistBody("on", "node[004-001]"), status: 400, message: /reversed range "004-001"/ },
    { name: "malformed range", action: "on", body: hostlistBody("on", "node[1-"), status: 400, message: /"\[" without "\]"/ },
    { name: "too many hosts", action: "on", body: hostlistBody("on", "node[1-20000]"), status: 400, message: /more than the maximum of 10000 hosts/ },
    { name: "unknown nodes", action: "on", body: hostlistBody("on", "node[001-006]"), status: 404, message: /not found: node\[005-006\] \(2 of 6\)/ },
  ];
  for (const { name, action, body, status, message } of invalidBodies) {
    test(`${name} gives ${status} before anything runs`, async () => {
      const response = await bulk(action, body);
      assert.equal(response.status, status);
      assert.match((await response.json()).message, message);
      assert.equal(t.hardware.calls.length, 0);
      assert.deepEqual(await t.db.orm.select().from(job), []);
    });
  }
});
