import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { node, nodeStatus } from "../lib/db/schema/index.ts";
import { createTestApp, TEST_EPOCH, type TestApp } from "./helpers.ts";

/** Body of a state report, the shape the installer sends. */
function report(nodeName: string, fields: Record<string, unknown>): { monitor: { status: Record<string, unknown> } } {
  return { monitor: { status: { [nodeName]: fields } } };
}

async function storedStatus(t: TestApp, nodeName: string) {
  const [row] = await t.db.orm
    .select({ state: nodeStatus.state, status: nodeStatus.status, updated: nodeStatus.updated })
    .from(nodeStatus)
    .innerJoin(node, eq(node.id, nodeStatus.node_id))
    .where(eq(node.name, nodeName));
  return row;
}

for (const base of ["/monitor/status", "/monitor/node"]) {
  describe(`${base}/{node}`, () => {
    let t: TestApp;
    before(async () => (t = await createTestApp()));
    after(() => t.close());
    beforeEach(() => t.db.write((tx) => tx.delete(nodeStatus)));

    test("stores a state with the node's provision token", async () => {
      const token = await t.services.tokens.issueProvision("node001");
      const response = await t.request(`${base}/node001`, {
        method: "POST",
        headers: { "x-access-tokens": token },
        json: report("node001", { state: "install.download" }),
      });
      assert.equal(response.status, 204);
      assert.equal(await response.text(), "");
      assert.deepEqual(await storedStatus(t, "node001"), { state: "install.download", status: null, updated: TEST_EPOCH });
    });

    test("stores a state and status with an admin token", async () => {
      const response = await t.request(`${base}/node002`, { method: "POST", json: report("node002", { state: "install.error", status: "Disk sda not found" }) });
      assert.equal(response.status, 204);
      assert.deepEqual(await storedStatus(t, "node002"), { state: "install.error", status: "Disk sda not found", updated: TEST_EPOCH });
    });

    test("a new state replaces state and status", async () => {
      await t.request(`${base}/node001`, { method: "POST", json: report("node001", { state: "power off", status: "by operator" }) });
      t.clock.advance(5000);
      const response = await t.request(`${base}/node001`, { method: "POST", json: report("node001", { state: "install.success" }) });
      assert.equal(response.status, 204);
      assert.deepEqual(await storedStatus(t, "node001"), { state: "install.success", status: null, updated: t.clock.now() });
      const rows = await t.db.orm.select().from(nodeStatus);
      assert.equal(rows.length, 1);
    });

    const readCases: { state: string; status?: string; expected: number | string | null }[] = [
      { state: "install.success", expected: 200 },
      { state: "install.discovered", expected: 200 },
      { state: "install.finalizing", status: "ignored text", expected: 200 },
      { state: "install.error", status: "Disk sda not found", expected: 500 },
      { state: "install.download", expected: null },
      { state: "power on", status: "by operator", expected: "by operator" },
    ];
    for (const item of readCases) {
      test(`GET after ${item.state} shows status ${item.expected}`, async () => {
        const posted = await t.request(`${base}/node003`, { method: "POST", json: report("node003", { state: item.state, status: item.status }) });
        assert.equal(posted.status, 204);
        const response = await t.request(`${base}/node003`, { headers: { "x-access-tokens": "" } });
        assert.equal(response.status, 200);
        assert.deepEqual(await response.json(), { monitor: { status: { node003: { status: item.expected, state: item.state } } } });
      });
    }

    test("GET of a node that never reported shows nulls", async () => {
      const response = await t.request(`${base}/node004`, { headers: { "x-access-tokens": "" } });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { monitor: { status: { node004: { status: null, state: null } } } });
    });

    test("GET of an unknown node gets 404", async () => {
      const response = await t.request(`${base}/node999`, { headers: { "x-access-tokens": "" } });
      assert.equal(response.status, 404);
      assert.deepEqual(await response.json(), { message: 'Node "node999" does not exist' });
    });

    test("GET with an invalid node name gets 400", async () => {
      const response = await t.request(`${base}/Node001`, { headers: { "x-access-tokens": "" } });
      assert.equal(response.status, 400);
      assert.match((await response.json()).message, /Node name "Node001" is invalid/);
    });

    test("node GET shows the reported state", async () => {
      await t.request(`${base}/node001`, { method: "POST", json: report("node001", { state: "install.success" }) });
      const response = await t.request("/config/node/node001");
      assert.equal(response.status, 200);
      const view = (await response.json()).config.node.node001;
      assert.equal(view.status, "Luna installer: success");
    });

    const authCases: { name: string; token: () => Promise<string>; status: number; message: string }[] = [
      { name: "no token", token: async () => "", status: 401, message: "A valid token is missing" },
      { name: "garbage token", token: async () => "garbage", status: 401, message: "Token is invalid" },
      { name: "another node's token", token: () => t.services.tokens.issueProvision("node002"), status: 403, message: "Token is not valid for this node" },
    ];
    for (const item of authCases) {
      test(`POST with ${item.name} gets ${item.status}`, async () => {
        const response = await t.request(`${base}/node001`, {
          method: "POST",
          headers: { "x-access-tokens": await item.token() },
          json: report("node001", { state: "install.success" }),
        });
        assert.equal(response.status, item.status);
        assert.deepEqual(await response.json(), { message: item.message });
        assert.equal(await storedStatus(t, "node001"), undefined);
      });
    }

    const invalidCases: { name: string; body: unknown; message: RegExp }[] = [
      { name: "body for another node", body: report("node002", { state: "install.success" }), message: /body must contain exactly monitor\.status\.node001, not "node002"/ },
      {
        name: "body for two nodes",
        body: { monitor: { status: { node001: { state: "a" }, node002: { state: "b" } } } },
        message: /body must contain exactly monitor\.status\.node001, not "node001", "node002"/,
      },
      { name: "missing state", body: report("node001", { status: "x" }), message: /missing key "monitor\.status\.node001\.state"/ },
      { name: "empty state", body: report("node001", { state: "" }), message: /"monitor\.status\.node001\.state": must not be empty/ },
      { name: "state with a newline", body: report("node001", { state: "install.success\nX-Injected: 1" }), message: /must not contain control characters/ },
      { name: "state too long", body: report("node001", { state: "x".repeat(65) }), message: /must be at most 64 characters/ },
      { name: "state not a string", body: report("node001", { state: 200 }), message: /"monitor\.status\.node001\.state"/ },
      { name: "status with a control character", body: report("node001", { state: "install.error", status: "bad\u0007" }), message: /"monitor\.status\.node001\.status": must not contain control characters/ },
      { name: "status too long", body: report("node001", { state: "install.error", status: "x".repeat(2049) }), message: /must be at most 2048 characters/ },
      { name: "unknown key", body: report("node001", { state: "install.success", progress: 5 }), message: /unknown key "monitor\.status\.node001\.progress"/ },
      { name: "config envelope", body: { config: { node: { node001: { state: "x" } } } }, message: /missing key "monitor"/ },
    ];
    for (const item of invalidCases) {
      test(`POST with ${item.name} gets 400`, async () => {
        const response = await t.request(`${base}/node001`, { method: "POST", json: item.body });
        assert.equal(response.status, 400);
        assert.match((await response.json()).message, item.message);
        assert.equal(await storedStatus(t, "node001"), undefined);
      });
    }

    test("POST for an unknown node gets 404", async () => {
      const response = await t.request(`${base}/node999`, { method: "POST", json: report("node999", { state: "install.success" }) });
      assert.equal(response.status, 404);
      assert.deepEqual(await response.json(), { message: 'Node "node999" does not exist' });
      assert.equal((await t.db.orm.select().from(nodeStatus)).length, 0);
    });

    test("deleting the node removes its state", async () => {
      await t.request(`${base}/node004`, { method: "POST", json: report("node004", { state: "install.success" }) });
      assert.equal((await t.db.orm.select().from(nodeStatus)).length, 1);
      await t.db.write((tx) => tx.delete(node).where(eq(node.name, "node004")));
      assert.equal((await t.db.orm.select().from(nodeStatus)).length, 0);
    });
  });
}

describe("provision token scope on /monitor/node", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("installer reports and reads its own state", async () => {
    const token = await t.services.tokens.issueProvision("node002");
    const denied = await t.request("/config/node", { headers: { "x-access-tokens": token } });
    assert.equal(denied.status, 403);
    assert.deepEqual(await denied.json(), { message: "Token is not permitted for this endpoint" });

    const posted = await t.request("/monitor/node/node002", {
      method: "POST",
      headers: { "x-access-tokens": token },
      json: report("node002", { state: "install.success" }),
    });
    assert.equal(posted.status, 204);
    const read = await t.request("/monitor/node/node002", { headers: { "x-access-tokens": token } });
    assert.equal(read.status, 200);
    assert.deepEqual(await read.json(), { monitor: { status: { node002: { status: 200, state: "install.success" } } } });
    assert.equal((await storedStatus(t, "node002")).state, "install.success");
  });
});
