import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { bmcsetup, node, nodeGroup } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

const TRICKY_PASSWORD = `pa ss "quoted" 'single' $HOME; rm -rf /`;

function envelope(name: string, fields: Record<string, unknown>) {
  return { config: { bmcsetup: { [name]: fields } } };
}

async function storedRow(t: TestApp, name: string) {
  const [row] = await t.db.orm.select().from(bmcsetup).where(eq(bmcsetup.name, name));
  return row;
}

describe("bmcsetup routes", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("list returns the bootstrap setup", async () => {
    const response = await t.request("/config/bmcsetup");
    assert.equal(response.status, 200);
    const body = await response.json();
    const setup = body.config.bmcsetup["default-bmcsetup"];
    assert.equal(setup.name, "default-bmcsetup");
    assert.equal(setup.userid, 2);
    assert.equal(setup.username, "admin");
    assert.equal("id" in setup, false);
  });

  test("show returns the stored password", async () => {
    const response = await t.request("/config/bmcsetup/default-bmcsetup");
    assert.equal(response.status, 200);
    const setup = (await response.json()).config.bmcsetup["default-bmcsetup"];
    assert.equal(setup.password, (await storedRow(t, "default-bmcsetup")).password);
  });

  test("create applies defaults and generates a password", async () => {
    const response = await t.request("/config/bmcsetup/bmc-a", { method: "POST", json: envelope("bmc-a", { name: "bmc-a", username: "root" }) });
    assert.equal(response.status, 201);
    assert.match((await response.json()).message, /bmc-a created/);
    const row = await storedRow(t, "bmc-a");
    assert.equal(row.userid, 2);
    assert.equal(row.netchannel, 1);
    assert.equal(row.mgmtchannel, 1);
    assert.equal(row.username, "root");
    assert.match(row.password ?? "", /^[0-9a-f]{16}$/);
  });

  test("create without username leaves it empty", async () => {
    const response = await t.request("/config/bmcsetup/bmc-nouser", { method: "POST", json: envelope("bmc-nouser", {}) });
    assert.equal(response.status, 201);
    assert.equal((await storedRow(t, "bmc-nouser")).username, null);
  });

  test("password is stored byte for byte", async () => {
    const response = await t.request("/config/bmcsetup/bmc-pw", { method: "POST", json: envelope("bmc-pw", { password: TRICKY_PASSWORD }) });
    assert.equal(response.status, 201);
    assert.equal((await storedRow(t, "bmc-pw")).password, TRICKY_PASSWORD);
    const shown = await (await t.request("/config/bmcsetup/bmc-pw")).json();
    assert.equal(shown.config.bmcsetup["bmc-pw"].password, TRICKY_PASSWORD);

    const update = await t.request("/config/bmcsetup/bmc-pw", { method: "POST", json: envelope("bmc-pw", { password: ` ${TRICKY_PASSWORD} ` }) });
    assert.equal(update.status, 204);
    assert.equal((await storedRow(t, "bmc-pw")).password, ` ${TRICKY_PASSWORD} `);
  });

  test("update sets the extra ipmitool fields", async () => {
    const response = await t.request("/config/bmcsetup/bmc-a", {
      method: "POST",
      json: envelope("bmc-a", { cipher_suite: 17, privilege: "operator", retries: "3", timeout: 20, unmanaged_bmc_users: "disable", comment: "lab" }),
    });
    assert.equal(response.status, 204);
    const row = await storedRow(t, "bmc-a");
    assert.equal(row.cipher_suite, 17);
    assert.equal(row.privilege, "OPERATOR");
    assert.equal(row.retries, 3);
    assert.equal(row.timeout, 20);
    assert.equal(row.unmanaged_bmc_users, "disable");
    assert.equal(row.comment, "lab");
    const shown = (await (await t.request("/config/bmcsetup/bmc-a")).json()).config.bmcsetup["bmc-a"];
    assert.equal(shown.cipher_suite, 17);
    assert.equal(shown.privilege, "OPERATOR");
    assert.equal(shown.retries, 3);
    assert.equal(shown.timeout, 20);
  });

  test("empty values clear fields", async () => {
    const response = await t.request("/config/bmcsetup/bmc-a", { method: "POST", json: envelope("bmc-a", { privilege: "", cipher_suite: "", unmanaged_bmc_users: "skip" }) });
    assert.equal(response.status, 204);
    const row = await storedRow(t, "bmc-a");
    assert.equal(row.privilege, null);
    assert.equal(row.cipher_suite, null);
    assert.equal(row.unmanaged_bmc_users, null);
  });

  const invalidBodies: [string, Record<string, unknown>, RegExp][] = [
    ["cipher suite 0", { cipher_suite: 0 }, /cipher_suite/],
    ["cipher suite 18", { cipher_suite: 18 }, /cipher_suite/],
    ["unknown privilege", { privilege: "ROOT" }, /privilege/],
    ["empty password", { password: "" }, /password/],
    ["password with newline", { password: "a\nb" }, /password/],
    ["unknown key", { colour: "blue" }, /unknown key "config.bmcsetup.bmc-a.colour"/],
    ["userid not a number", { userid: "two" }, /userid/],
    ["unmanaged users value", { unmanaged_bmc_users: "keep" }, /unmanaged_bmc_users/],
    ["other body name", { name: "bmc-b" }, /newbmcname/],
  ];
  for (const [label, fields, pattern] of invalidBodies) {
    test(`update rejects ${label} with 400`, async () => {
      const before = await storedRow(t, "bmc-a");
      const response = await t.request("/config/bmcsetup/bmc-a", { method: "POST", json: envelope("bmc-a", fields) });
      assert.equal(response.status, 400);
      assert.match((await response.json()).message, pattern);
      assert.deepEqual(await storedRow(t, "bmc-a"), before);
    });
  }

  test("path name is validated", async () => {
    const response = await t.request("/config/bmcsetup/default");
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /"default" is a reserved word/);
  });

  test("show of an unknown setup is 404", async () => {
    const response = await t.request("/config/bmcsetup/nothere");
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /"nothere" not found/);
  });

  test("rename moves the setup to newbmcname", async () => {
    const response = await t.request("/config/bmcsetup/bmc-nouser", { method: "POST", json: envelope("bmc-nouser", { name: "bmc-nouser", newbmcname: "bmc-renamed" }) });
    assert.equal(response.status, 204);
    assert.equal(await storedRow(t, "bmc-nouser"), undefined);
    assert.ok(await storedRow(t, "bmc-renamed"));
  });

  test("rename onto an existing name is 409", async () => {
    const response = await t.request("/config/bmcsetup/bmc-renamed", { method: "POST", json: envelope("bmc-renamed", { newbmcname: "bmc-a" }) });
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /"bmc-a" already exists/);
    assert.ok(await storedRow(t, "bmc-renamed"));
  });

  test("newbmcname on a missing setup is 400", async () => {
    const response = await t.request("/config/bmcsetup/bmc-ghost", { method: "POST", json: envelope("bmc-ghost", { newbmcname: "bmc-x" }) });
    assert.equal(response.status, 400);
    assert.equal(await storedRow(t, "bmc-x"), undefined);
  });

  test("clone copies every column", async () => {
    const response = await t.request("/config/bmcsetup/bmc-pw/_clone", { method: "POST", json: envelope("bmc-pw", { newbmcname: "bmc-pw2", username: "other" }) });
    assert.equal(response.status, 201);
    const source = await storedRow(t, "bmc-pw");
    const copy = await storedRow(t, "bmc-pw2");
    assert.equal(copy.password, source.password);
    assert.equal(copy.userid, source.userid);
    assert.equal(copy.username, "other");
  });

  const cloneErrors: [string, string, Record<string, unknown>, number][] = [
    ["missing newbmcname", "bmc-pw", {}, 400],
    ["existing target", "bmc-pw", { newbmcname: "bmc-a" }, 409],
    ["unknown source", "bmc-none", { newbmcname: "bmc-z" }, 404],
    ["reserved target", "bmc-pw", { newbmcname: "inventory" }, 400],
  ];
  for (const [label, source, fields, status] of cloneErrors) {
    test(`clone with ${label} is ${status}`, async () => {
      const count = (await t.db.orm.select().from(bmcsetup)).length;
      const response = await t.request(`/config/bmcsetup/${source}/_clone`, { method: "POST", json: envelope(source, fields) });
      assert.equal(response.status, status);
      assert.equal((await t.db.orm.select().from(bmcsetup)).length, count);
    });
  }

  test("member lists nodes through their group", async () => {
    const response = await t.request("/config/bmcsetup/default-bmcsetup/_member");
    assert.equal(response.status, 200);
    assert.deepEqual((await response.json()).config.bmcsetup["default-bmcsetup"].members, ["node001", "node002", "node003", "node004"]);
  });

  test("member follows a node override", async () => {
    const target = await storedRow(t, "bmc-a");
    await t.db.write((tx) => tx.update(node).set({ bmcsetup_id: target.id }).where(eq(node.name, "node002")));
    const own = await (await t.request("/config/bmcsetup/bmc-a/_member")).json();
    assert.deepEqual(own.config.bmcsetup["bmc-a"].members, ["node002"]);
    const inherited = await (await t.request("/config/bmcsetup/default-bmcsetup/_member")).json();
    assert.deepEqual(inherited.config.bmcsetup["default-bmcsetup"].members, ["node001", "node003", "node004"]);
  });

  test("delete of a setup used by a node is 409 naming it", async () => {
    const response = await t.request("/config/bmcsetup/bmc-a/_delete");
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /1 node \(node002\)/);
    assert.ok(await storedRow(t, "bmc-a"));
  });

  test("delete of a setup used by a group is 409 naming it", async () => {
    const response = await t.request("/config/bmcsetup/default-bmcsetup/_delete");
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /1 group \(compute-group\)/);
  });

  test("delete removes an unused setup", async () => {
    const response = await t.request("/config/bmcsetup/bmc-renamed/_delete");
    assert.equal(response.status, 204);
    assert.equal(await storedRow(t, "bmc-renamed"), undefined);
  });

  test("delete of an unknown setup is 404", async () => {
    const response = await t.request("/config/bmcsetup/bmc-renamed/_delete");
    assert.equal(response.status, 404);
  });

  test("list of no setups is 404", async () => {
    await t.db.write(async (tx) => {
      await tx.update(node).set({ bmcsetup_id: null });
      await tx.update(nodeGroup).set({ bmcsetup_id: null });
      await tx.delete(bmcsetup);
    });
    const response = await t.request("/config/bmcsetup");
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /No BMC setup/);
  });

  const unsupported: [string, string][] = [
    ["POST", "/config/bmcsetup"],
    ["GET", "/config/bmcsetup/x/_clone"],
    ["POST", "/config/bmcsetup/x/_delete"],
    ["POST", "/config/bmcsetup/x/_member"],
  ];
  for (const [method, path] of unsupported) {
    test(`${method} ${path} is 405`, async () => {
      const response = await t.request(path, method === "GET" ? {} : { method, json: {} });
      assert.equal(response.status, 405);
    });
  }

  test("requests without a token are 401", async () => {
    const response = await t.request("/config/bmcsetup/default-bmcsetup", { headers: { "x-access-tokens": "" } });
    assert.equal(response.status, 401);
  });
});
