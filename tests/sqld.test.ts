import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cluster, node } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";
import { startSqld, type Started } from "./processes.ts";

describe("data layer on a libSQL server (sqld)", () => {
  const directory = mkdtempSync(join(tmpdir(), "luna2-sqld-"));
  let sqld: Started & { url: string };
  let t: TestApp;

  before(async () => {
    sqld = await startSqld(directory);
    t = await createTestApp({ databaseUrl: sqld.url });
  });
  after(async () => {
    await t?.close();
    sqld?.child.kill("SIGTERM");
    await sqld?.exited;
    rmSync(directory, { recursive: true, force: true });
  });

  test("migrations and bootstrap run against the server", async () => {
    const nodes = await t.db.orm.select({ name: node.name }).from(node).orderBy(node.name);
    assert.deepEqual(nodes.map((row) => row.name), ["node001", "node002", "node003", "node004"]);
  });

  test("a second app on the same server sees the first one's writes", async () => {
    const response = await t.request("/config/cluster", { method: "POST", json: { config: { cluster: { technical_contacts: "hpc@example.org" } } } });
    assert.equal(response.status, 204);
    const other = await createTestApp({ databaseUrl: sqld.url, bootstrap: false });
    try {
      const { config } = await (await other.request("/config/cluster")).json();
      assert.equal(config.cluster.technical_contacts, "hpc@example.org");
    } finally {
      other.db.close();
    }
  });

  test("a failed transaction leaves nothing behind on the server", async () => {
    const response = await t.request("/config/cluster", { method: "POST", json: { config: { cluster: { debug: true, controller: "10.200.0.1" } } } });
    assert.equal(response.status, 400);
    const [row] = await t.db.orm.select().from(cluster);
    assert.equal(row.debug, false);
  });

  test("parallel writes through one client are all applied", async () => {
    const updates = Array.from({ length: 20 }, (_, index) =>
      t.request("/config/cluster", { method: "POST", json: { config: { cluster: { user: `user${index}` } } } }));
    const statuses = (await Promise.all(updates)).map((response) => response.status);
    assert.deepEqual(new Set(statuses), new Set([204]));
  });
});

describe("embedded replica of a libSQL server", () => {
  const directory = mkdtempSync(join(tmpdir(), "luna2-replica-"));
  let sqld: Started & { url: string };
  let t: TestApp;

  before(async () => {
    sqld = await startSqld(directory);
    t = await createTestApp({ syncUrl: sqld.url });
  });
  after(async () => {
    await t?.close();
    if (sqld && sqld.child.exitCode === null) {
      process.kill(sqld.child.pid!, "SIGTERM");
      await sqld.exited;
    }
    rmSync(directory, { recursive: true, force: true });
  });

  test("reads run while write transactions are open on the single connection", async () => {
    const requests = Array.from({ length: 30 }, (_, index) =>
      index % 3 === 0
        ? t.request("/config/cluster", { method: "POST", json: { config: { cluster: { user: `user${index}` } } } })
        : t.request("/config/cluster"));
    const statuses = (await Promise.all(requests)).map((response) => response.status);
    assert.deepEqual([...new Set(statuses)].sort(), [200, 204]);
  });

  test("with the primary down, reads still work and writes answer 503", async () => {
    process.kill(sqld.child.pid!, "SIGTERM");
    await sqld.exited;

    const read = await t.request("/config/cluster");
    assert.equal(read.status, 200);
    const write = await t.request("/config/cluster", { method: "POST", json: { config: { cluster: { user: "offline" } } } });
    assert.equal(write.status, 503);
    assert.match((await write.json()).message, /primary database http:\/\/127\.0\.0\.1:\d+ cannot be reached/);
  });
});
