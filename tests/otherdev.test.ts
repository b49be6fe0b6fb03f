import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { ipAddress, network, otherDevice } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

function envelope(name: string, fields: Record<string, unknown>) {
  return { config: { otherdev: { [name]: fields } } };
}

async function storedDevice(t: TestApp, name: string) {
  const [row] = await t.db.orm.select().from(otherDevice).where(eq(otherDevice.name, name));
  return row;
}

/** Returns the stored address of a device as `<network> <address>`, or null. */
async function storedAddress(t: TestApp, name: string): Promise<string | null> {
  const row = await storedDevice(t, name);
  const [address] = await t.db.orm
    .select({ network: network.name, ipaddress: ipAddress.ipaddress, ipaddress_ipv6: ipAddress.ipaddress_ipv6 })
    .from(ipAddress)
    .innerJoin(network, eq(network.id, ipAddress.network_id))
    .where(eq(ipAddress.other_device_id, row.id));
  return address ? `${address.network} ${address.ipaddress ?? address.ipaddress_ipv6}` : null;
}

function post(t: TestApp, path: string, json: unknown) {
  return t.request(path, { method: "POST", json });
}

describe("otherdev routes", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("list of no devices is 404", async () => {
    const response = await t.request("/config/otherdev");
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /No other device/);
  });

  test("create stores columns, MAC and address", async () => {
    const response = await post(t, "/config/otherdev/pdu01", envelope("pdu01", { name: "pdu01", vendor: "APC", macaddress: "00-1A-2B-3C-4D-5E", ipaddress: "10.141.10.1", network: "cluster" }));
    assert.equal(response.status, 201);
    assert.match((await response.json()).message, /pdu01 created/);
    const row = await storedDevice(t, "pdu01");
    assert.equal(row.vendor, "APC");
    assert.equal(row.macaddress, "00:1a:2b:3c:4d:5e");
    assert.equal(await storedAddress(t, "pdu01"), "cluster 10.141.10.1");
  });

  test("list and show use the otherdev key with the address", async () => {
    const list = await t.request("/config/otherdev");
    assert.equal(list.status, 200);
    const listed = (await list.json()).config.otherdev.pdu01;
    assert.equal(listed.ipaddress, "10.141.10.1");
    assert.equal(listed.network, "cluster");
    const show = await t.request("/config/otherdev/pdu01");
    assert.equal(show.status, 200);
    const shown = (await show.json()).config.otherdev.pdu01;
    assert.equal(shown.macaddress, "00:1a:2b:3c:4d:5e");
    assert.equal("id" in shown, false);
  });

  test("create without an address has none", async () => {
    const response = await post(t, "/config/otherdev/pdu02", envelope("pdu02", { comment: "spare" }));
    assert.equal(response.status, 201);
    assert.equal(await storedAddress(t, "pdu02"), null);
    const shown = (await (await t.request("/config/otherdev/pdu02")).json()).config.otherdev.pdu02;
    assert.equal("ipaddress" in shown, false);
  });

  test("update moves the device to another network", async () => {
    const response = await post(t, "/config/otherdev/pdu02", envelope("pdu02", { network: "ipmi" }));
    assert.equal(response.status, 204);
    assert.equal(await storedAddress(t, "pdu02"), "ipmi 10.148.0.5");
  });

  const invalidBodies: [string, Record<string, unknown>, RegExp][] = [
    ["address outside the network", { ipaddress: "10.149.0.9" }, /not a host address of network "ipmi"/],
    ["invalid MAC", { macaddress: "00:1a:2b:3c:4d:zz" }, /not a MAC address/],
    ["unknown key", { oid: ".1" }, /unknown key "config.otherdev.pdu02.oid"/],
    ["invalid new name", { newotherdevname: "pdu_3" }, /newotherdevname "pdu_3" is invalid/],
    ["unknown network", { network: "nowhere" }, /"nowhere" does not exist/],
  ];
  for (const [label, fields, pattern] of invalidBodies) {
    test(`update rejects ${label} with 400`, async () => {
      const before = await storedDevice(t, "pdu02");
      const response = await post(t, "/config/otherdev/pdu02", envelope("pdu02", fields));
      assert.equal(response.status, 400);
      assert.match((await response.json()).message, pattern);
      assert.deepEqual(await storedDevice(t, "pdu02"), before);
      assert.equal(await storedAddress(t, "pdu02"), "ipmi 10.148.0.5");
    });
  }

  const conflicts: [string, Record<string, unknown>, RegExp][] = [
    ["MAC of another device", { macaddress: "00:1A:2B:3C:4D:5E" }, /00:1a:2b:3c:4d:5e is already used by other device "pdu01"/],
    ["address of a node", { ipaddress: "10.148.0.2" }, /already used by interface BMC of node "node002"/],
    ["address of another device", { ipaddress: "10.141.10.1", network: "cluster" }, /already used by other device "pdu01"/],
  ];
  for (const [label, fields, pattern] of conflicts) {
    test(`update with the ${label} is 409`, async () => {
      const response = await post(t, "/config/otherdev/pdu02", envelope("pdu02", fields));
      assert.equal(response.status, 409);
      assert.match((await response.json()).message, pattern);
      assert.equal((await storedDevice(t, "pdu02")).macaddress, null);
      assert.equal(await storedAddress(t, "pdu02"), "ipmi 10.148.0.5");
    });
  }

  test("MAC of a switch is 409 naming it", async () => {
    await t.request("/config/switch/switch01", { method: "POST", json: { config: { switch: { switch01: { macaddress: "02:00:00:00:00:01" } } } } });
    const response = await post(t, "/config/otherdev/pdu02", envelope("pdu02", { macaddress: "02-00-00-00-00-01" }));
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /switch "switch01"/);
  });

  test("rename keeps MAC and address", async () => {
    const response = await post(t, "/config/otherdev/pdu01", envelope("pdu01", { newotherdevname: "pdu-main" }));
    assert.equal(response.status, 204);
    assert.equal(await storedDevice(t, "pdu01"), undefined);
    assert.equal((await storedDevice(t, "pdu-main")).macaddress, "00:1a:2b:3c:4d:5e");
    assert.equal(await storedAddress(t, "pdu-main"), "cluster 10.141.10.1");
  });

  test("rename onto an existing name is 409", async () => {
    const response = await post(t, "/config/otherdev/pdu02", envelope("pdu02", { newotherdevname: "pdu-main" }));
    assert.equal(response.status, 409);
    assert.ok(await storedDevice(t, "pdu02"));
  });

  test("clone takes the lowest free address without the MAC", async () => {
    const response = await post(t, "/config/otherdev/pdu-main/_clone", envelope("pdu-main", { newotherdevname: "pdu-copy" }));
    assert.equal(response.status, 201);
    assert.match((await response.json()).message, /cloned as pdu-copy/);
    const copy = await storedDevice(t, "pdu-copy");
    assert.equal(copy.vendor, "APC");
    assert.equal(copy.macaddress, null);
    assert.equal(await storedAddress(t, "pdu-copy"), "cluster 10.141.0.5");
  });

  const cloneErrors: [string, string, Record<string, unknown>, number][] = [
    ["missing newotherdevname", "pdu-main", {}, 400],
    ["existing target", "pdu-main", { newotherdevname: "pdu02" }, 409],
    ["unknown source", "pdu-none", { newotherdevname: "pdu-z" }, 404],
  ];
  for (const [label, source, fields, status] of cloneErrors) {
    test(`clone with ${label} is ${status}`, async () => {
      const count = (await t.db.orm.select().from(otherDevice)).length;
      const response = await post(t, `/config/otherdev/${source}/_clone`, envelope(source, fields));
      assert.equal(response.status, status);
      assert.equal((await t.db.orm.select().from(otherDevice)).length, count);
    });
  }

  test("delete removes the device and its address", async () => {
    const row = await storedDevice(t, "pdu-copy");
    const response = await t.request("/config/otherdev/pdu-copy/_delete");
    assert.equal(response.status, 204);
    assert.equal(await storedDevice(t, "pdu-copy"), undefined);
    assert.equal((await t.db.orm.select().from(ipAddress).where(eq(ipAddress.other_device_id, row.id))).length, 0);
  });

  test("delete of an unknown device is 404", async () => {
    const response = await t.request("/config/otherdev/pdu-copy/_delete");
    assert.equal(response.status, 404);
  });

  test("reserved path name is 400", async () => {
    const response = await t.request("/config/otherdev/inventory");
    assert.equal(response.status, 400);
  });

  const unsupported: [string, string][] = [
    ["POST", "/config/otherdev"],
    ["GET", "/config/otherdev/x/_clone"],
    ["POST", "/config/otherdev/x/_delete"],
  ];
  for (const [method, path] of unsupported) {
    test(`${method} ${path} is 405`, async () => {
      const response = await t.request(path, method === "GET" ? {} : { method, json: {} });
      assert.equal(response.status, 405);
    });
  }
});
