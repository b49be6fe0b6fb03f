import assert from "node:assert/strict";
import { after, beforeEach, describe, test } from "node:test";
import { and, asc, eq } from "drizzle-orm";
import { groupInterface, ipAddress, network, node, nodeGroup, nodeInterface, switchDevice } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

type Entry = Record<string, unknown>;

function postInterfaces(t: TestApp, group: string, interfaces: Entry[]) {
  return t.request(`/config/group/${group}/interfaces`, { method: "POST", json: { config: { group: { [group]: { interfaces } } } } });
}

/** Loads every node interface called `name` with its address and network, by node name. */
async function memberInterfaces(t: TestApp, name: string) {
  return t.db.orm
    .select({
      node: node.name,
      mtu: nodeInterface.mtu,
      ipaddress: ipAddress.ipaddress,
      network: network.name,
      dhcp: ipAddress.dhcp,
    })
    .from(nodeInterface)
    .innerJoin(node, eq(node.id, nodeInterface.node_id))
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
    .leftJoin(network, eq(network.id, ipAddress.network_id))
    .where(eq(nodeInterface.interface, name))
    .orderBy(asc(node.name));
}

async function groupInterfaceRow(t: TestApp, group: string, name: string) {
  const [row] = await t.db.orm
    .select({ item: groupInterface, network: network.name })
    .from(groupInterface)
    .innerJoin(nodeGroup, eq(nodeGroup.id, groupInterface.group_id))
    .leftJoin(network, eq(network.id, groupInterface.network_id))
    .where(and(eq(nodeGroup.name, group), eq(groupInterface.interface, name)));
  return row;
}

describe("group interfaces", () => {
  let t: TestApp;
  beforeEach(async () => {
    await t?.close();
    t = await createTestApp();
  });
  after(() => t.close());

  test("list shows every interface", async () => {
    const response = await t.request("/config/group/compute-group/interfaces");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      config: { group: { "compute-group": { interfaces: [{ interface: "BMC", network: "ipmi" }, { interface: "BOOTIF", network: "cluster" }] } } },
    });
  });

  test("single shows interface settings", async () => {
    assert.equal((await postInterfaces(t, "compute-group", [{ interface: "BOOTIF", mtu: "9000", dhcp: true, options: "b3B0" }])).status, 204);
    const response = await t.request("/config/group/compute-group/interfaces/BOOTIF");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      config: { group: { "compute-group": { interfaces: [{ interface: "BOOTIF", network: "cluster", mtu: "9000", options: "b3B0", dhcp: true }] } } },
    });
  });

  const missing: [string, string, RegExp][] = [
    ["/config/group/compute-group/interfaces/eth9", "missing interface", /Group "compute-group" has no interface "eth9"/],
    ["/config/group/nosuch/interfaces/BOOTIF", "unknown group", /Group "nosuch" does not exist/],
    ["/config/group/nosuch/interfaces", "unknown group list", /Group "nosuch" does not exist/],
    ["/config/group/compute-group/interfaces/eth9/_delete", "delete of a missing interface", /Group "compute-group" has no interface "eth9"/],
  ];
  for (const [path, label, message] of missing) {
    test(`${label} is 404`, async () => {
      const response = await t.request(path);
      assert.equal(response.status, 404);
      assert.match((await response.json()).message, message);
    });
  }

  test("add gives members own addresses", async () => {
    const response = await postInterfaces(t, "compute-group", [{ interface: "ib0", network: "ib", mtu: 65520 }]);
    assert.equal(response.status, 201);
    assert.match((await response.json()).message, /Interface ib0 created in group compute-group/);
    assert.equal((await groupInterfaceRow(t, "compute-group", "ib0")).network, "ib");
    assert.deepEqual(await memberInterfaces(t, "ib0"), [
      { node: "node001", mtu: "65520", ipaddress: "10.149.0.1", network: "ib", dhcp: false },
      { node: "node002", mtu: "65520", ipaddress: "10.149.0.2", network: "ib", dhcp: false },
      { node: "node003", mtu: "65520", ipaddress: "10.149.0.3", network: "ib", dhcp: false },
      { node: "node004", mtu: "65520", ipaddress: "10.149.0.4", network: "ib", dhcp: false },
    ]);
  });

  test("add skips addresses of devices", async () => {
    const [ib] = await t.db.orm.select().from(network).where(eq(network.name, "ib"));
    const [switchRow] = await t.db.orm.select().from(switchDevice);
    await t.db.orm.insert(ipAddress).values({ network_id: ib.id, switch_id: switchRow.id, ipaddress: "10.149.0.2" });
    assert.equal((await postInterfaces(t, "compute-group", [{ interface: "ib0", network: "ib" }])).status, 201);
    const addresses = (await memberInterfaces(t, "ib0")).map((row) => row.ipaddress);
    assert.deepEqual(addresses, ["10.149.0.1", "10.149.0.3", "10.149.0.4", "10.149.0.5"]);
  });

  test("add keeps address in network", async () => {
    const [ib] = await t.db.orm.select().from(network).where(eq(network.name, "ib"));
    const [node002] = await t.db.orm.select().from(node).where(eq(node.name, "node002"));
    const [own] = await t.db.orm.insert(nodeInterface).values({ node_id: node002.id, interface: "ib0", mtu: "2044" }).returning();
    await t.db.orm.insert(ipAddress).values({ network_id: ib.id, node_interface_id: own.id, ipaddress: "10.149.0.77" });
    assert.equal((await postInterfaces(t, "compute-group", [{ interface: "ib0", network: "ib" }])).status, 201);
    const members = await memberInterfaces(t, "ib0");
    assert.equal(members[1].mtu, "2044", "the existing interface keeps its own settings");
    assert.deepEqual(members.map((row) => [row.node, row.ipaddress]), [
      ["node001", "10.149.0.1"],
      ["node002", "10.149.0.77"],
      ["node003", "10.149.0.2"],
      ["node004", "10.149.0.3"],
    ]);
  });

  test("add in pool network gives no address", async () => {
    await t.db.orm.update(network).set({ dhcp: true, dhcp_nodes_in_pool: true, dhcp_range_begin: "10.149.1.1", dhcp_range_end: "10.149.1.100" }).where(eq(network.name, "ib"));
    assert.equal((await postInterfaces(t, "compute-group", [{ interface: "ib0", network: "ib" }])).status, 201);
    for (const row of await memberInterfaces(t, "ib0")) {
      assert.equal(row.network, "ib");
      assert.equal(row.ipaddress, null);
      assert.equal(row.dhcp, true);
    }
  });

  test("add skips DHCP range and gateway", async () => {
    const [small] = await t.db.orm
      .insert(network)
      .values({ name: "small", network: "10.200.0.0", subnet: 28, gateway: "10.200.0.1", dhcp: true, dhcp_range_begin: "10.200.0.3", dhcp_range_end: "10.200.0.5" })
      .returning();
    assert.ok(small);
    assert.equal((await postInterfaces(t, "compute-group", [{ interface: "eth1", network: "small" }])).status, 201);
    assert.deepEqual((await memberInterfaces(t, "eth1")).map((row) => row.ipaddress), ["10.200.0.2", "10.200.0.6", "10.200.0.7", "10.200.0.8"]);
  });

  test("add to full network is 409", async () => {
    await t.db.orm.insert(network).values({ name: "tiny", network: "10.201.0.0", subnet: 30 });
    const response = await postInterfaces(t, "compute-group", [{ interface: "eth1", network: "tiny" }]);
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /Network "tiny" has no free IPv4 address left for interface eth1 of node "node003"/);
    assert.equal(await groupInterfaceRow(t, "compute-group", "eth1"), undefined);
    assert.deepEqual(await memberInterfaces(t, "eth1"), []);
  });

  test("add to many members allocates in order", async () => {
    const [group] = await t.db.orm.select().from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
    const extra = Array.from({ length: 996 }, (_, index) => ({ name: `bulk${String(index).padStart(4, "0")}`, group_id: group.id }));
    await t.db.orm.insert(node).values(extra);
    const started = performance.now();
    assert.equal((await postInterfaces(t, "compute-group", [{ interface: "ib0", network: "ib" }])).status, 201);
    assert.ok(performance.now() - started < 20_000, "1000 members took more than 20 s");
    const addresses = (await memberInterfaces(t, "ib0")).map((row) => row.ipaddress);
    assert.equal(addresses.length, 1000);
    assert.equal(new Set(addresses).size, 1000);
    // Members are served in name order, so the Nth member gets the Nth host address.
    const expected = Array.from({ length: 1000 }, (_, index) => `10.149.${(index + 1) >> 8}.${(index + 1) & 255}`);
    assert.deepEqual(addresses, expected);
  });

  test("update reaches members, keeps addresses", async () => {
    const before = await memberInterfaces(t, "BMC");
    const response = await postInterfaces(t, "compute-group", [{ interface: "BMC", mtu: 1500, dhcp: "yes" }]);
    assert.equal(response.status, 204);
    assert.equal((await groupInterfaceRow(t, "compute-group", "BMC")).item.mtu, "1500");
    const after = await memberInterfaces(t, "BMC");
    assert.deepEqual(after.map((row) => row.ipaddress), before.map((row) => row.ipaddress));
    for (const row of after) {
      assert.equal(row.mtu, "1500");
      assert.equal(row.dhcp, true);
    }
  });

  test("bond settings reach members and clear", async () => {
    const bonded = await postInterfaces(t, "compute-group", [{ interface: "BOOTIF", bond_mode: "802.3ad", bond_slaves: "eth0 eth1" }]);
    assert.equal(bonded.status, 204);
    const stored = (await groupInterfaceRow(t, "compute-group", "BOOTIF")).item;
    assert.equal(stored.bond_mode, "802.3ad");
    assert.equal(stored.bond_slaves, "eth0,eth1");
    const [member] = await t.db.orm.select().from(nodeInterface).where(eq(nodeInterface.interface, "BOOTIF")).limit(1);
    assert.equal(member.bond_mode, "802.3ad");
    assert.equal(member.bond_slaves, "eth0,eth1");

    assert.equal((await postInterfaces(t, "compute-group", [{ interface: "BOOTIF", bond_mode: "" }])).status, 204);
    const cleared = (await groupInterfaceRow(t, "compute-group", "BOOTIF")).item;
    assert.equal(cleared.bond_mode, null);
    assert.equal(cleared.bond_slaves, null);
    for (const row of await t.db.orm.select().from(nodeInterface).where(eq(nodeInterface.interface, "BOOTIF"))) {
      assert.equal(row.bond_mode, null);
      assert.equal(row.bond_slaves, null);
    }
  });

  test("clearing vlanid clears vlan_parent", async () => {
    assert.equal((await postInterfaces(t, "compute-group", [{ interface: "BMC", vlanid: 100, vlan_parent: "BOOTIF" }])).status, 204);
    assert.equal((await groupInterfaceRow(t, "compute-group", "BMC")).item.vlan_parent, "BOOTIF");
    assert.equal((await postInterfaces(t, "compute-group", [{ interface: "BMC", vlanid: "" }])).status, 204);
    const row = (await groupInterfaceRow(t, "compute-group", "BMC")).item;
    assert.equal(row.vlanid, null);
    assert.equal(row.vlan_parent, null);
    for (const member of await t.db.orm.select().from(nodeInterface).where(eq(nodeInterface.interface, "BMC"))) {
      assert.equal(member.vlanid, null);
      assert.equal(member.vlan_parent, null);
    }
  });

  test("network change moves member addresses", async () => {
    const response = await postInterfaces(t, "compute-group", [{ interface: "BMC", network: "ib" }]);
    assert.equal(response.status, 204);
    assert.equal((await groupInterfaceRow(t, "compute-group", "BMC")).network, "ib");
    assert.deepEqual((await memberInterfaces(t, "BMC")).map((row) => [row.ipaddress, row.network]), [
      ["10.149.0.1", "ib"],
      ["10.149.0.2", "ib"],
      ["10.149.0.3", "ib"],
      ["10.149.0.4", "ib"],
    ]);
    const [ipmi] = await t.db.orm.select().from(network).where(eq(network.name, "ipmi"));
    assert.deepEqual(await t.db.orm.select().from(ipAddress).where(eq(ipAddress.network_id, ipmi.id)), []);
  });

  test("rename reaches members, keeps addresses", async () => {
    const before = await memberInterfaces(t, "BMC");
    const response = await postInterfaces(t, "compute-group", [{ interface: "BMC", newinterfacename: "ipmi0" }]);
    assert.equal(response.status, 204);
    assert.equal(await groupInterfaceRow(t, "compute-group", "BMC"), undefined);
    assert.equal((await groupInterfaceRow(t, "compute-group", "ipmi0")).network, "ipmi");
    assert.deepEqual(await memberInterfaces(t, "BMC"), []);
    assert.deepEqual(await memberInterfaces(t, "ipmi0"), before);
  });

  test("rename onto member interface is 409", async () => {
    const [node003] = await t.db.orm.select().from(node).where(eq(node.name, "node003"));
    await t.db.orm.insert(nodeInterface).values({ node_id: node003.id, interface: "ipmi0" });
    const response = await postInterfaces(t, "compute-group", [{ interface: "BMC", newinterfacename: "ipmi0" }]);
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /node "node003" already has an interface "ipmi0"/);
    assert.ok(await groupInterfaceRow(t, "compute-group", "BMC"));
    assert.equal((await memberInterfaces(t, "BMC")).length, 4);
  });

  test("delete removes member interfaces", async () => {
    const response = await t.request("/config/group/compute-group/interfaces/BMC/_delete");
    assert.equal(response.status, 204);
    assert.equal(await groupInterfaceRow(t, "compute-group", "BMC"), undefined);
    assert.deepEqual(await memberInterfaces(t, "BMC"), []);
    const [ipmi] = await t.db.orm.select().from(network).where(eq(network.name, "ipmi"));
    assert.deepEqual(await t.db.orm.select().from(ipAddress).where(eq(ipAddress.network_id, ipmi.id)), []);
    assert.equal((await memberInterfaces(t, "BOOTIF")).length, 4);
  });

  test("group POST interfaces reach members", async () => {
    const response = await t.request("/config/group/compute-group", {
      method: "POST",
      json: { config: { group: { "compute-group": { interfaces: [{ interface: "ib0", network: "ib" }] } } } },
    });
    assert.equal(response.status, 204);
    assert.equal((await memberInterfaces(t, "ib0")).length, 4);
  });

  const rejected: [string, Entry[], number, RegExp][] = [
    ["new interface without network", [{ interface: "eth1" }], 400, /network is required for the new interface "eth1"/],
    ["unknown network", [{ interface: "eth1", network: "nosuch" }], 400, /network "nosuch" of interface "eth1" does not exist/],
    ["empty network", [{ interface: "BOOTIF", network: "" }], 400, /network.*must name a network/],
    ["mtu below 68", [{ interface: "BOOTIF", mtu: 50 }], 400, /mtu.*68 to 65535/],
    ["mtu that is not a number", [{ interface: "BOOTIF", mtu: "big" }], 400, /mtu.*"big"/],
    ["vlanid above 4094", [{ interface: "BOOTIF", vlanid: 5000 }], 400, /vlanid.*1 to 4094/],
    ["vlan_parent without vlanid", [{ interface: "BOOTIF", vlan_parent: "eth0" }], 400, /vlan_parent "eth0" of interface "BOOTIF" requires a vlanid/],
    ["mtu on a VLAN", [{ interface: "BOOTIF", vlanid: 10, vlan_parent: "eth0", mtu: 1500 }], 400, /mtu of interface "BOOTIF" is not allowed with vlan_parent/],
    ["bond and VLAN together", [{ interface: "BOOTIF", vlanid: 10, vlan_parent: "eth0", bond_mode: "802.3ad" }], 400, /cannot be both a VLAN/],
    ["unknown bond_mode", [{ interface: "BOOTIF", bond_mode: "fastest" }], 400, /bond_mode.*must be one of/],
    ["bond with one slave", [{ interface: "BOOTIF", bond_mode: "1", bond_slaves: "eth0" }], 400, /at least two slave interfaces/],
    ["bond with a repeated slave", [{ interface: "BOOTIF", bond_mode: "1", bond_slaves: "eth0, eth0" }], 400, /bond_slaves.*names an interface twice/],
    ["bond_slaves without bond_mode", [{ interface: "BOOTIF", bond_slaves: "eth0,eth1" }], 400, /bond_slaves of interface "BOOTIF" requires a bond_mode/],
    ["invalid interface name", [{ interface: "eth 1", network: "ib" }], 400, /interface.*must be letters/],
    ["unknown key", [{ interface: "BOOTIF", speed: 10 }], 400, /unknown key "config\.group\.compute-group\.interfaces\.0\.speed"/],
    ["rename of a missing interface", [{ interface: "eth9", newinterfacename: "eth8" }], 404, /has no interface "eth9" to rename/],
    ["rename onto another group interface", [{ interface: "BMC", newinterfacename: "BOOTIF" }], 409, /already has an interface "BOOTIF"/],
    ["rename to the same name", [{ interface: "BMC", newinterfacename: "BMC" }], 400, /newinterfacename "BMC" is the current name/],
    ["empty list", [], 400, /at least one interface/],
    ["second entry invalid", [{ interface: "ib0", network: "ib" }, { interface: "eth1" }], 400, /network is required for the new interface "eth1"/],
  ];
  for (const [label, entries, status, message] of rejected) {
    test(`POST rejects ${label} with ${status}`, async () => {
      const before = await t.db.orm.select().from(groupInterface);
      const nodeInterfacesBefore = await t.db.orm.select().from(nodeInterface);
      const response = await postInterfaces(t, "compute-group", entries);
      assert.equal(response.status, status);
      assert.match((await response.json()).message, message);
      assert.deepEqual(await t.db.orm.select().from(groupInterface), before);
      assert.deepEqual(await t.db.orm.select().from(nodeInterface), nodeInterfacesBefore);
    });
  }

  test("POST to an unknown group is 404", async () => {
    const response = await postInterfaces(t, "nosuch", [{ interface: "eth1", network: "ib" }]);
    assert.equal(response.status, 404);
  });
});
