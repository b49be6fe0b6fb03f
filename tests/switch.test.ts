import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { ipAddress, network, node, nodeInterface, switchDevice } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

function envelope(name: string, fields: Record<string, unknown>) {
  return { config: { switch: { [name]: fields } } };
}

async function storedSwitch(t: TestApp, name: string) {
  const [row] = await t.db.orm.select().from(switchDevice).where(eq(switchDevice.name, name));
  return row;
}

/** Returns the stored address of a switch as `<network> <address>`, or null. */
async function storedAddress(t: TestApp, name: string): Promise<string | null> {
  const row = await storedSwitch(t, name);
  const [address] = await t.db.orm
    .select({ network: network.name, ipaddress: ipAddress.ipaddress, ipaddress_ipv6: ipAddress.ipaddress_ipv6 })
    .from(ipAddress)
    .innerJoin(network, eq(network.id, ipAddress.network_id))
    .where(eq(ipAddress.switch_id, row.id));
  return address ? `${address.network} ${address.ipaddress ?? address.ipaddress_ipv6}` : null;
}

function post(t: TestApp, path: string, json: unknown) {
  return t.request(path, { method: "POST", json });
}

describe("switch routes", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("list returns the bootstrap switch without address", async () => {
    const response = await t.request("/config/switch");
    assert.equal(response.status, 200);
    const item = (await response.json()).config.switch.switch01;
    assert.equal(item.oid, ".1.3.6.1.2.1.17.7.1.2.2.1.2");
    assert.equal("ipaddress" in item, false);
    assert.equal("id" in item, false);
  });

  test("create applies SNMP defaults and the address", async () => {
    const response = await post(t, "/config/switch/sw-a", envelope("sw-a", { name: "sw-a", ipaddress: "10.141.0.200", network: "cluster", macaddress: "AA-BB-CC-DD-EE-01" }));
    assert.equal(response.status, 201);
    assert.match((await response.json()).message, /sw-a created/);
    const row = await storedSwitch(t, "sw-a");
    assert.equal(row.oid, ".1.3.6.1.2.1.17.7.1.2.2.1.2");
    assert.equal(row.read, "public");
    assert.equal(row.rw, "trusted");
    assert.equal(row.macaddress, "aa:bb:cc:dd:ee:01");
    assert.equal(await storedAddress(t, "sw-a"), "cluster 10.141.0.200");
  });

  test("show adds ipaddress and network", async () => {
    const response = await t.request("/config/switch/sw-a");
    assert.equal(response.status, 200);
    const item = (await response.json()).config.switch["sw-a"];
    assert.equal(item.ipaddress, "10.141.0.200");
    assert.equal(item.network, "cluster");
    assert.equal(item.macaddress, "aa:bb:cc:dd:ee:01");
  });

  test("address alone finds its network", async () => {
    const response = await post(t, "/config/switch/sw-b", envelope("sw-b", { ipaddress: "10.148.1.1" }));
    assert.equal(response.status, 201);
    assert.equal(await storedAddress(t, "sw-b"), "ipmi 10.148.1.1");
  });

  test("network alone allocates the lowest free address", async () => {
    const response = await post(t, "/config/switch/switch01", envelope("switch01", { network: "ipmi" }));
    assert.equal(response.status, 204);
    assert.equal(await storedAddress(t, "switch01"), "ipmi 10.148.0.5");
  });

  test("address change keeps the current network", async () => {
    const response = await post(t, "/config/switch/switch01", envelope("switch01", { ipaddress: "10.148.0.77" }));
    assert.equal(response.status, 204);
    assert.equal(await storedAddress(t, "switch01"), "ipmi 10.148.0.77");
  });

  test("IPv6 address is stored canonically", async () => {
    await t.db.write(async (tx) => {
      await tx.insert(network).values({ name: "v6net", network_ipv6: "fd00::", subnet_ipv6: 64 });
    });
    const response = await post(t, "/config/switch/sw-six", envelope("sw-six", { ipaddress: "FD00:0:0:0::10", network: "v6net" }));
    assert.equal(response.status, 201);
    const row = await storedSwitch(t, "sw-six");
    const [address] = await t.db.orm.select().from(ipAddress).where(eq(ipAddress.switch_id, row.id));
    assert.equal(address.ipaddress, null);
    assert.equal(address.ipaddress_ipv6, "fd00::10");
    const shown = (await (await t.request("/config/switch/sw-six")).json()).config.switch["sw-six"];
    assert.equal(shown.ipaddress_ipv6, "fd00::10");
    assert.equal(shown.network, "v6net");
  });

  test("IPv4 address in an IPv6 network is 400", async () => {
    const response = await post(t, "/config/switch/sw-six", envelope("sw-six", { ipaddress: "10.0.0.1" }));
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /network "v6net" has no IPv4 range/);
  });

  test("update sets columns and normalises lists", async () => {
    const response = await post(t, "/config/switch/sw-a", envelope("sw-a", { uplinkports: "1, 2 swp3", netboot: "yes", read: "my community", vendor: "" }));
    assert.equal(response.status, 204);
    const row = await storedSwitch(t, "sw-a");
    assert.equal(row.uplinkports, "1,2,swp3");
    assert.equal(row.netboot, true);
    assert.equal(row.read, "my community");
    assert.equal(row.vendor, null);
  });

  const invalidBodies: [string, Record<string, unknown>, RegExp][] = [
    ["address outside the network", { ipaddress: "10.141.0.50", network: "ipmi" }, /not a host address of network "ipmi"/],
    ["broadcast address", { ipaddress: "10.148.255.255", network: "ipmi" }, /not a host address/],
    ["unknown network", { network: "nowhere" }, /network "nowhere" does not exist/],
    ["invalid address", { ipaddress: "10.148.0.300" }, /ipaddress/],
    ["invalid MAC", { macaddress: "aa:bb:cc:dd:ee" }, /not a MAC address/],
    ["invalid OID", { oid: "iso.3.6" }, /not an SNMP OID/],
    ["invalid port", { uplinkports: "1,p$rt" }, /"p\$rt" is not a port name/],
    ["invalid ZTP format", { ztpformat: "json" }, /ztpformat/],
    ["upper-case new name", { newswitchname: "Switch2" }, /newswitchname "Switch2" is invalid/],
    ["unknown key", { port: "1" }, /unknown key "config.switch.sw-a.port"/],
    ["other body name", { name: "sw-b" }, /newswitchname/],
  ];
  for (const [label, fields, pattern] of invalidBodies) {
    test(`update rejects ${label} with 400`, async () => {
      const before = await storedSwitch(t, "sw-a");
      const response = await post(t, "/config/switch/sw-a", envelope("sw-a", fields));
      assert.equal(response.status, 400);
      assert.match((await response.json()).message, pattern);
      assert.deepEqual(await storedSwitch(t, "sw-a"), before);
      assert.equal(await storedAddress(t, "sw-a"), "cluster 10.141.0.200");
    });
  }

  test("bare address in no network is 400", async () => {
    const response = await post(t, "/config/switch/sw-nonet", envelope("sw-nonet", { ipaddress: "192.168.1.1" }));
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /192\.168\.1\.1 for switch "sw-nonet": no network contains it/);
    assert.equal(await storedSwitch(t, "sw-nonet"), undefined);
  });

  const conflicts: [string, Record<string, unknown>, RegExp][] = [
    ["address of a node", { ipaddress: "10.141.0.1" }, /10\.141\.0\.1 in network "cluster" is already used by interface BOOTIF of node "node001"/],
    ["address of another switch", { ipaddress: "10.148.1.1", network: "ipmi" }, /already used by switch "sw-b"/],
    ["address of the controller", { ipaddress: "10.141.255.254" }, /controller/],
  ];
  for (const [label, fields, pattern] of conflicts) {
    test(`update with the ${label} is 409`, async () => {
      const response = await post(t, "/config/switch/sw-a", envelope("sw-a", fields));
      assert.equal(response.status, 409);
      assert.match((await response.json()).message, pattern);
      assert.equal(await storedAddress(t, "sw-a"), "cluster 10.141.0.200");
    });
  }

  test("MAC of another switch is 409 naming it", async () => {
    const response = await post(t, "/config/switch/sw-b", envelope("sw-b", { macaddress: "aa:bb:cc:dd:ee:01" }));
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /aa:bb:cc:dd:ee:01 is already used by switch "sw-a"/);
    assert.equal((await storedSwitch(t, "sw-b")).macaddress, null);
  });

  test("MAC of a node interface is 409 naming it", async () => {
    const [first] = await t.db.orm.select({ id: nodeInterface.id }).from(nodeInterface).innerJoin(node, eq(node.id, nodeInterface.node_id)).where(eq(node.name, "node001"));
    await t.db.write(async (tx) => {
      await tx.update(nodeInterface).set({ macaddress: "52:54:00:00:00:01" }).where(eq(nodeInterface.id, first.id));
    });
    const response = await post(t, "/config/switch/sw-b", envelope("sw-b", { macaddress: "52-54-00-00-00-01" }));
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /52:54:00:00:00:01 is already used by interface \w+ of node "node001"/);
  });

  test("own MAC in another case is accepted", async () => {
    const response = await post(t, "/config/switch/sw-a", envelope("sw-a", { macaddress: "AA:BB:CC:DD:EE:01" }));
    assert.equal(response.status, 204);
    assert.equal((await storedSwitch(t, "sw-a")).macaddress, "aa:bb:cc:dd:ee:01");
  });

  test("empty ipaddress removes the address", async () => {
    const response = await post(t, "/config/switch/sw-b", envelope("sw-b", { ipaddress: "" }));
    assert.equal(response.status, 204);
    assert.equal(await storedAddress(t, "sw-b"), null);
    const shown = (await (await t.request("/config/switch/sw-b")).json()).config.switch["sw-b"];
    assert.equal("ipaddress" in shown, false);
  });

  test("rename keeps the address", async () => {
    const response = await post(t, "/config/switch/sw-b", envelope("sw-b", { newswitchname: "sw-c", ipaddress: "10.148.2.2", network: "ipmi" }));
    assert.equal(response.status, 204);
    assert.equal(await storedSwitch(t, "sw-b"), undefined);
    assert.equal(await storedAddress(t, "sw-c"), "ipmi 10.148.2.2");
  });

  test("rename onto an existing name is 409", async () => {
    const response = await post(t, "/config/switch/sw-c", envelope("sw-c", { newswitchname: "sw-a" }));
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /"sw-a" already exists/);
    assert.ok(await storedSwitch(t, "sw-c"));
  });

  test("clone takes the lowest free address in the network", async () => {
    const response = await post(t, "/config/switch/sw-a/_clone", envelope("sw-a", { newswitchname: "sw-a2" }));
    assert.equal(response.status, 201);
    assert.match((await response.json()).message, /cloned as sw-a2/);
    const source = await storedSwitch(t, "sw-a");
    const copy = await storedSwitch(t, "sw-a2");
    assert.equal(copy.macaddress, null);
    assert.equal(copy.uplinkports, source.uplinkports);
    assert.equal(copy.read, "my community");
    assert.equal(await storedAddress(t, "sw-a2"), "cluster 10.141.0.5");
  });

  test("clone with an address override uses it", async () => {
    const response = await post(t, "/config/switch/sw-a/_clone", envelope("sw-a", { newswitchname: "sw-a3", ipaddress: "10.148.3.3", network: "ipmi", macaddress: "aa:bb:cc:dd:ee:03" }));
    assert.equal(response.status, 201);
    assert.equal(await storedAddress(t, "sw-a3"), "ipmi 10.148.3.3");
    assert.equal((await storedSwitch(t, "sw-a3")).macaddress, "aa:bb:cc:dd:ee:03");
  });

  test("clone of a switch without address has none", async () => {
    const response = await post(t, "/config/switch/sw-c/_clone", envelope("sw-c", { newswitchname: "sw-c2", ipaddress: "" }));
    assert.equal(response.status, 201);
    assert.equal(await storedAddress(t, "sw-c2"), null);
  });

  const cloneErrors: [string, string, Record<string, unknown>, number][] = [
    ["missing newswitchname", "sw-a", {}, 400],
    ["existing target", "sw-a", { newswitchname: "sw-c" }, 409],
    ["unknown source", "sw-none", { newswitchname: "sw-z" }, 404],
    ["duplicate MAC", "sw-a", { newswitchname: "sw-z", macaddress: "aa:bb:cc:dd:ee:01" }, 409],
    ["taken address", "sw-a", { newswitchname: "sw-z", ipaddress: "10.141.0.2" }, 409],
  ];
  for (const [label, source, fields, status] of cloneErrors) {
    test(`clone with ${label} is ${status}`, async () => {
      const count = (await t.db.orm.select().from(switchDevice)).length;
      const response = await post(t, `/config/switch/${source}/_clone`, envelope(source, fields));
      assert.equal(response.status, status);
      assert.equal((await t.db.orm.select().from(switchDevice)).length, count);
    });
  }

  test("delete of a switch nodes use is 409 naming them", async () => {
    const row = await storedSwitch(t, "sw-a");
    await t.db.write(async (tx) => {
      await tx.update(node).set({ switch_id: row.id, switchport: "7" }).where(eq(node.name, "node004"));
    });
    const response = await t.request("/config/switch/sw-a/_delete");
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /1 node \(node004\)/);
    assert.ok(await storedSwitch(t, "sw-a"));
  });

  test("delete removes the switch and its address", async () => {
    const row = await storedSwitch(t, "sw-a2");
    const response = await t.request("/config/switch/sw-a2/_delete");
    assert.equal(response.status, 204);
    assert.equal(await storedSwitch(t, "sw-a2"), undefined);
    assert.equal((await t.db.orm.select().from(ipAddress).where(eq(ipAddress.switch_id, row.id))).length, 0);
  });

  test("delete of an unknown switch is 404", async () => {
    const response = await t.request("/config/switch/sw-a2/_delete");
    assert.equal(response.status, 404);
  });

  test("show of an unknown switch is 404", async () => {
    const response = await t.request("/config/switch/sw-none");
    assert.equal(response.status, 404);
  });

  test("upper-case path name is 400", async () => {
    const response = await t.request("/config/switch/Switch01");
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /"Switch01" is invalid/);
  });

  const unsupported: [string, string][] = [
    ["POST", "/config/switch"],
    ["GET", "/config/switch/x/_clone"],
    ["POST", "/config/switch/x/_delete"],
  ];
  for (const [method, path] of unsupported) {
    test(`${method} ${path} is 405`, async () => {
      const response = await t.request(path, method === "GET" ? {} : { method, json: {} });
      assert.equal(response.status, 405);
    });
  }
});
