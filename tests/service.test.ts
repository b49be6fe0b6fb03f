import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { job, network } from "../lib/db/schema/index.ts";
import { flushServiceRegeneration, scheduleServiceRegeneration } from "../lib/dhcp-dns-regeneration.ts";
import { runCommand } from "../lib/hardware/command.ts";
import { requestServiceReload } from "../lib/service-control.ts";
import { Templates } from "../lib/templates.ts";
import { setBootstrapMacs, writeFakeServiceCommand } from "./dhcp-dns-fixtures.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

type Fake = ReturnType<typeof writeFakeServiceCommand>;

interface Context {
  t: TestApp;
  fake: Fake;
  fakeDirectory: string;
}

async function createServiceApp(extra = ""): Promise<Context> {
  const fakeDirectory = mkdtempSync(join(tmpdir(), "luna2-fake-"));
  const fake = writeFakeServiceCommand(fakeDirectory);
  const t = await createTestApp({ configExtra: `[SERVICES]\nCOMMAND = ${fake.path}\nCOOLDOWN = 1s\n${extra}` });
  t.hardware.reply = (spec) => runCommand(spec);
  return { t, fake, fakeDirectory };
}

async function closeServiceApp(context: Context): Promise<void> {
  await context.t.close();
  rmSync(context.fakeDirectory, { recursive: true, force: true });
}

/** Waits until the job has ended; jobs of these routes finish within a few seconds. */
async function waitForJob(t: TestApp, requestId: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const [row] = await t.db.orm.select().from(job).where(eq(job.request_id, requestId));
    if (row && (row.state === "done" || row.state === "failed")) return row.state;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`job ${requestId} did not end within 20 s`);
}

/** Reads every status line of a finished job through the public route. */
async function readStatus(t: TestApp, requestId: string): Promise<{ lines: string[]; status: number }> {
  const response = await t.request(`/service/status/${requestId}`, { headers: { "x-access-tokens": "" } });
  assert.equal(response.status, 200);
  const body = await response.json();
  return { lines: body.message.split(";;").map((line: string) => line.replace(/^\S+ \S+ :: /, "")), status: body.status };
}

describe("reload cool-down", () => {
  let context: Context;
  before(async () => (context = await createServiceApp()));
  after(() => closeServiceApp(context));

  test("a burst runs the reload command at most once per cool-down", async () => {
    const { t, fake } = context;
    const first = Array.from({ length: 5 }, () => requestServiceReload(t.services, "named"));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = Array.from({ length: 5 }, () => requestServiceReload(t.services, "named"));
    const outcomes = await Promise.all([...first, ...second]);

    const calls = fake.calls();
    assert.deepEqual(calls.map((call) => call.slice(1)), [["reload", "named"], ["reload", "named"]]);
    const gap = Number(calls[1][0]) - Number(calls[0][0]);
    assert.ok(gap >= 0.95, `second reload came ${gap} s after the first`);
    assert.ok(outcomes.slice(5).every((outcome) => outcome.waitedMs > 0));
  });

  test("units cool down separately", async () => {
    const { t, fake } = context;
    const before = fake.calls().length;
    await requestServiceReload(t.services, "isc-dhcp-server");
    assert.deepEqual(fake.calls().slice(before).map((call) => call.slice(1)), [["reload", "isc-dhcp-server"]]);
  });

  test("failed reload rejects every joined request", async () => {
    const { t } = context;
    const failing = join(context.fakeDirectory, "failing-systemctl");
    writeFileSync(failing, "#!/bin/sh\necho 'Unit nope.service not found.' >&2\nexit 5\n", { mode: 0o755 });
    const original = t.services.config.services.command;
    t.services.config.services.command = failing;
    try {
      const requests = [requestServiceReload(t.services, "nope"), requestServiceReload(t.services, "nope")];
      for (const request of requests) await assert.rejects(request, /reload of nope failed: Unit nope\.service not found\./);
    } finally {
      t.services.config.services.command = original;
    }
  });
});

describe("scheduled regeneration", () => {
  let context: Context;
  before(async () => (context = await createServiceApp()));
  after(() => closeServiceApp(context));

  test("a burst of changes becomes one regeneration", async () => {
    const { t, fake } = context;
    await setBootstrapMacs(t.db);
    for (let index = 0; index < 20; index++) scheduleServiceRegeneration(t.services, `node node00${index % 4 + 1} changed`);
    await flushServiceRegeneration(t.services);
    const reloads = fake.calls().map((call) => call.slice(1).join(" ")).sort();
    assert.deepEqual(reloads, ["reload isc-dhcp-server", "reload named"]);
    assert.ok(existsSync(t.config.dhcp.configPath));
    assert.ok(existsSync(t.config.dns.namedConfPath));
  });

  test("nothing changed means no reload", async () => {
    const { t, fake } = context;
    scheduleServiceRegeneration(t.services, "cluster changed");
    await flushServiceRegeneration(t.services);
    assert.equal(fake.calls().length, 2);
  });

  test("gateway change reloads only DHCP", async () => {
    const { t, fake } = context;
    await t.db.write((tx) => tx.update(network).set({ gateway: "10.141.255.253" }).where(eq(network.name, "cluster")));
    scheduleServiceRegeneration(t.services, "network cluster changed");
    await flushServiceRegeneration(t.services);
    // Only dhcpd.conf carries the gateway, so only DHCP reloads; it waits out the cool-down.
    assert.deepEqual(fake.calls().slice(2).map((call) => call.slice(1).join(" ")), ["reload isc-dhcp-server"]);
  });

  test("a failing regeneration is logged, not thrown", async () => {
    const { t } = context;
    const original = t.services.config.dhcp.configPath;
    const blocker = join(t.directory, "not-a-directory");
    writeFileSync(blocker, "");
    t.services.config.dhcp.configPath = join(blocker, "dhcpd.conf");
    try {
      await t.db.write((tx) => tx.update(network).set({ gateway: "10.141.255.252" }).where(eq(network.name, "cluster")));
      scheduleServiceRegeneration(t.services, "network cluster changed");
      await flushServiceRegeneration(t.services);
    } finally {
      t.services.config.dhcp.configPath = original;
    }
  });
});

describe("service routes", () => {
  let context: Context;
  before(async () => {
    context = await createServiceApp();
    await setBootstrapMacs(context.t.db);
  });
  after(() => closeServiceApp(context));

  for (const name of ["dhcp", "dns"] as const) {
    test(`GET /service/${name}/reload runs a reload job`, async () => {
      const { t, fake } = context;
      const before = fake.calls().length;
      const response = await t.request(`/service/${name}/reload`);
      assert.equal(response.status, 200);
      const body = await response.json();
      assert.equal(body.message, `service for ${name} reload queued`);
      assert.equal(typeof body.request_id, "string");

      const again = await (await t.request(`/service/${name}/reload`)).json();
      assert.deepEqual(again, { message: `service for ${name} reload already queued`, request_id: body.request_id });

      assert.equal(await waitForJob(t, body.request_id), "done");
      const { lines, status } = await readStatus(t, body.request_id);
      assert.equal(status, 200);
      assert.equal(lines[0], `reload service ${name}`);
      assert.ok(lines.some((line) => line.startsWith("checked and installed")), lines.join("\n"));
      const unit = name === "dhcp" ? "isc-dhcp-server" : "named";
      assert.ok(lines.some((line) => line.startsWith(`reloaded ${unit}`)), lines.join("\n"));
      assert.equal(lines.at(-1), `finished reload service ${name}`);
      assert.deepEqual(fake.calls().slice(before).map((call) => call.slice(1)), [["reload", unit]]);
      const file = name === "dhcp" ? t.config.dhcp.configPath : t.config.dns.namedConfPath;
      assert.ok(existsSync(file));
    });
  }

  test("a rejected configuration fails the job with the validator output", async () => {
    const { t } = context;
    const siteDirectory = join(t.directory, "broken-templates");
    mkdirSync(siteDirectory, { recursive: true });
    writeFileSync(join(siteDirectory, "dhcpd.conf.eta"), "not a dhcpd statement;\n");
    const original = t.services.templates;
    t.services.templates = new Templates(siteDirectory);
    try {
      const body = await (await t.request("/service/dhcp/reload")).json();
      assert.equal(await waitForJob(t, body.request_id), "failed");
      const { lines, status } = await readStatus(t, body.request_id);
      assert.equal(status, 500);
      assert.match(lines.at(-1)!, /^failed: reload service dhcp: .*dhcpd rejected the new .*dhcpd\.conf, so the previous file stays in place: /);
    } finally {
      t.services.templates = original;
    }
  });

  test("GET /service/luna2/reload compiles the site templates", async () => {
    const { t } = context;
    const siteDirectory = join(t.directory, "site");
    mkdirSync(siteDirectory, { recursive: true });
    t.services.config.templates.directory = siteDirectory;
    writeFileSync(join(siteDirectory, "zone.eta"), "<% if ( %>\n");
    const broken = await (await t.request("/service/luna2/reload")).json();
    assert.equal(broken.message, "service for luna2 reload queued");
    assert.equal(await waitForJob(t, broken.request_id), "failed");
    assert.match((await readStatus(t, broken.request_id)).lines.at(-1)!, /^failed: Template .*zone\.eta does not compile/);
    assert.ok(t.services.templates.sources.get("zone")!.includes("/templates/zone.eta"));

    writeFileSync(join(siteDirectory, "zone.eta"), "; site zone <%= it.name %>\n");
    const fixed = await (await t.request("/service/luna2/reload")).json();
    assert.equal(await waitForJob(t, fixed.request_id), "done");
    const { lines } = await readStatus(t, fixed.request_id);
    assert.deepEqual(lines.slice(0, 1), ["reload service luna2"]);
    assert.match(lines[1], /^compiled \d+ templates$/);
    assert.equal(t.services.templates.sources.get("zone"), join(siteDirectory, "zone.eta"));
    await flushServiceRegeneration(t.services);
  });

  for (const path of ["/service/dhcp/reload", "/service/dns/reload", "/service/luna2/reload"]) {
    test(`POST ${path} is 405 and GET needs a token`, async () => {
      const { t } = context;
      assert.equal((await t.request(path, { method: "POST" })).status, 405);
      assert.equal((await t.request(path, { headers: { "x-access-tokens": "" } })).status, 401);
    });
  }
});

describe("service monitor", () => {
  let context: Context;
  before(async () => (context = await createServiceApp()));
  after(() => closeServiceApp(context));
  afterEach(() => context.fake.setActiveExit(0));

  const monitor = async (name: string) => {
    const response = await context.t.request(`/monitor/service/${name}`, { headers: { "x-access-tokens": "" } });
    return { status: response.status, body: await response.json() };
  };

  const cases = [
    { name: "dhcp", unit: "isc-dhcp-server", exit: 0, status: 200, text: "OK, running" },
    { name: "dns", unit: "named", exit: 0, status: 200, text: "OK, running" },
    { name: "dhcp", unit: "isc-dhcp-server", exit: 3, status: 500, text: "FAIL, not running" },
    { name: "dns", unit: "named", exit: 3, status: 500, text: "FAIL, not running" },
  ];
  for (const entry of cases) {
    test(`${entry.name} with is-active exit ${entry.exit} answers ${entry.status}`, async () => {
      context.fake.setActiveExit(entry.exit);
      const before = context.fake.calls().length;
      assert.deepEqual(await monitor(entry.name), { status: entry.status, body: { monitor: { Service: { [entry.name]: entry.text } } } });
      assert.deepEqual(context.fake.calls().slice(before).map((call) => call.slice(1)), [["is-active", entry.unit]]);
    });
  }

  test("status command that cannot start answers 503", async () => {
    const { t } = context;
    const original = t.services.config.services.command;
    t.services.config.services.command = join(context.fakeDirectory, "missing-systemctl");
    try {
      assert.deepEqual(await monitor("dns"), { status: 503, body: { monitor: { Service: { dns: "FAIL, cannot read the state of named" } } } });
    } finally {
      t.services.config.services.command = original;
    }
  });

  test("luna2 is running while its database answers", async () => {
    assert.deepEqual(await monitor("luna2"), { status: 200, body: { monitor: { Service: { luna2: "OK, running" } } } });
  });

  for (const name of ["dhcp", "dns", "luna2"]) {
    test(`POST /monitor/service/${name} is 405`, async () => {
      assert.equal((await context.t.request(`/monitor/service/${name}`, { method: "POST" })).status, 405);
    });
  }
});
