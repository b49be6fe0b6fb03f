import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { serve } from "@hono/node-server";
import { eq } from "drizzle-orm";
import { controller, haLease } from "../lib/db/schema/index.ts";
import { regenerateDhcp } from "../lib/dhcp-service.ts";
import { acquireLease } from "../lib/ha.ts";
import { fileDigest, JournalWorker } from "../lib/journal.ts";
import { createTestApp, type TestApp } from "./helpers.ts";
import { freePort, startSqld, type Started } from "./processes.ts";

describe("master lease and journal on a shared libSQL server", () => {
  const directory = mkdtempSync(join(tmpdir(), "luna2-ha-"));
  let sqld: Started & { url: string };
  let one: TestApp;
  let two: TestApp;
  const haSection = (name: string, endpoint: string) => `[HA]\nENABLED = yes\nCONTROLLER = ${name}\nENDPOINT = ${endpoint}\nLEASE_TIME = 30s\n`;
  let portTwo: number;

  before(async () => {
    sqld = await startSqld(directory);
    const portOne = await freePort();
    portTwo = await freePort();
    one = await createTestApp({ databaseUrl: sqld.url, configExtra: haSection("c1", `http://127.0.0.1:${portOne}`) });
    two = await createTestApp({ databaseUrl: sqld.url, bootstrap: false, configExtra: haSection("c2", `http://127.0.0.1:${portTwo}`) });
    two.clock.advance(0);
    await one.services.ha.start();
    await two.services.ha.start();
  });
  after(async () => {
    await one?.services.ha.stop();
    await two?.services.ha.stop();
    await one?.close();
    await two?.close();
    process.kill(sqld.child.pid!, "SIGTERM");
    await sqld.exited;
    rmSync(directory, { recursive: true, force: true });
  });

  test("the first controller holds the lease and the second does not", async () => {
    assert.deepEqual(await (await one.request("/ha/master")).json(), { message: true });
    const response = await two.request("/ha/master");
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { message: false });
  });

  test("both controllers are registered with their endpoints", async () => {
    const { message } = await (await one.request("/ha/controllers")).json();
    assert.equal(message.c1.master, true);
    assert.equal(message.c2.master, false);
    assert.match(message.c2.config.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test("lapsed lease taken, held lease kept", async () => {
    const now = one.clock.now();
    assert.equal(await acquireLease(two.db, "c2", now, 30_000), false);
    assert.equal(await acquireLease(two.db, "c2", now + 31_000, 30_000), true);
    const [row] = await two.db.orm.select().from(haLease);
    assert.equal(row.holder, "c2");
    assert.equal(await acquireLease(one.db, "c1", now + 32_000, 30_000), false);
  });

  test("_set takes the lease at once", async () => {
    two.clock.advance(0);
    const response = await one.request("/ha/master/_set");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { message: "current role set to master" });
    await two.services.ha.tick();
    assert.equal(two.services.ha.isMaster(), false);
    assert.equal((await two.request("/ha/master")).status, 404);
    const state = await (await two.request("/ha/state")).json();
    assert.equal(state.ha.lease_holder, "c1");
  });

  test("a role change reaches the listeners once", async () => {
    const changes: boolean[] = [];
    two.services.ha.onRoleChange((master) => changes.push(master));
    assert.equal((await two.request("/ha/master/_set")).status, 200);
    assert.equal((await two.request("/ha/master/_set")).status, 200);
    assert.equal((await one.request("/ha/master/_set")).status, 200);
    await two.services.ha.tick();
    assert.deepEqual(changes, [true, false]);
  });

  test("DHCP is reloaded by the master only", async () => {
    const before = two.hardware.calls.length;
    const result = await regenerateDhcp(two.services, { mode: "always" });
    assert.equal(result.reloaded, false);
    assert.ok(!two.hardware.calls.slice(before).some((spec) => spec.args.includes("reload")), "a controller that is not master reloaded DHCP");
  });

  test("overrule answers 204 and is shown in the state", async () => {
    assert.equal((await two.request("/ha/overrule/_set")).status, 204);
    assert.equal((await (await two.request("/ha/state")).json()).ha.overrule, true);
  });

  test("journal tasks are listed per controller in order and deleted", async () => {
    const post = await one.request("/journal", {
      method: "POST",
      json: { journal: [{ controller: "c2", task: "regenerate_dhcp" }, { controller: "c2", task: "reload_templates" }, { controller: "c1", task: "regenerate_dns" }] },
    });
    assert.equal(post.status, 201);
    const { journal } = await (await two.request("/journal/c2")).json();
    assert.deepEqual(journal.map((entry: { task: string }) => entry.task), ["regenerate_dhcp", "reload_templates"]);
    assert.equal((await one.request("/journal/c2/_delete")).status, 204);
    assert.deepEqual((await (await one.request("/journal/c2")).json()).journal, []);
    await one.request("/journal/c1/_delete");
  });

  const invalidTasks: [string, unknown, RegExp][] = [
    ["unknown task", { journal: { controller: "c2", task: "format_disks" } }, /task/],
    ["missing controller", { journal: { task: "regenerate_dns" } }, /controller/],
    ["file with a path", { journal: { controller: "c2", task: "fetch_files", payload: { source: "c1", files: [{ name: "../etc/passwd", size: 1, sha256: "0".repeat(64) }] } } }, /journal\.0\.payload\.files\.0\.name/],
    ["empty list", { journal: [] }, /at least one task/],
  ];
  for (const [name, body, message] of invalidTasks) {
    test(`POST /journal rejects ${name} with 400`, async () => {
      const response = await one.request("/journal", { method: "POST", json: body });
      assert.equal(response.status, 400);
      assert.match((await response.json()).message, message);
    });
  }

  test("fetch_files copies a peer's file byte for byte after verifying it", async () => {
    const server = serve({ fetch: one.app.fetch, hostname: "127.0.0.1", port: Number(new URL(one.config.ha.endpoint!).port) });
    try {
      const name = "compute-image-1700000000.tar.zst";
      mkdirSync(one.config.files.imageFiles, { recursive: true });
      const source = join(one.config.files.imageFiles, name);
      writeFileSync(source, Buffer.alloc(3 * 1024 * 1024, 7));
      const digest = await fileDigest(source);

      await one.request("/journal", { method: "POST", json: { journal: { controller: "c2", task: "fetch_files", payload: { source: "c1", files: [{ name, ...digest }] } } } });
      const worker = new JournalWorker(two.services);
      await worker.drain();
      assert.deepEqual(readFileSync(join(two.config.files.imageFiles, name)), readFileSync(source));
      assert.deepEqual((await (await two.request("/journal/c2")).json()).journal, []);

      await one.request("/journal", {
        method: "POST",
        json: { journal: { controller: "c2", task: "fetch_files", payload: { source: "c1", files: [{ name: "other.tar.zst", size: 1, sha256: "a".repeat(64) }] } } },
      });
      await worker.drain();
      const [pending] = (await (await two.request("/journal/c2")).json()).journal;
      assert.equal(pending.tries, 1, "a failed task stays for a retry");
    } finally {
      server.close();
      await one.request("/journal/c2/_delete");
    }
  });

  test("a controller row records the heartbeat", async () => {
    const [row] = await one.db.orm.select().from(controller).where(eq(controller.hostname, "c2"));
    assert.ok(row.seen !== null);
  });
});
