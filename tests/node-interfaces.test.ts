import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { and, eq, isNotNull } from "drizzle-orm";
import { groupInterface, ipAddress, network, node, nodeGroup, nodeInterface } from "../lib/db/schema/index.ts";
import { syncNodeWithGroup } from "../lib/node-interfaces.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

function interfacesBody(name: string, interfaces: unknown[]) {
  return { config: { node: { [name]: { interfaces } } } };
}

async function postInterfaces(t: TestApp, name: string, interfaces: unknown[]): Promise<Response> {
  return t.request(`/config/node/${name}/interfaces`, { method: "POST", json: interfacesBody(name, interfaces) });
}

async function storedInterface(t: TestApp, nodeName: string, interfaceName: string) {
  const [row] = await t.db.orm
    .select({ item: nodeInterface, address: ipAddress, network: network.name })
    .from(nodeInterface)
    .innerJoin(node, eq(node.id, nodeInterface.node_id))
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
    .leftJoin(network, eq(network.id, ipAddress.network_id))
    .where(and(eq(node.name, nodeName), eq(nodeInterface.interface, interfaceName)));
  return row;
}

describe("POST /config/node/{name}/interfaces", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("adds an interface with the first free address of its network", async () => {
    const response = await postInterfaces(t, "node003", [{ interface: "eth1", network: "ib" }]);
    assert.equal(response.status, 204);
    const row = await storedInterface(t, "node003", "eth1");
    assert.equal(row.address?.ipaddress, "10.149.0.1");
    assert.equal(row.network, "ib");
    const listed = await (await t.request("/config/node/node003/interfaces")).json();
    assert.deepEqual(listed.config.node.node003.interfaces.at(-1), { interface: "eth1", ipaddress: "10.149.0.1", macaddress: null, network: "ib" });
  });

  test("stores a dashed upper-case MAC lower-case with colons", async () => {
    const response = await postInterfaces(t, "node003", [{ interface: "BOOTIF", macaddress: "AA-BB-CC-DD-EE-03" }]);
    assert.equal(response.status, 204);
    const row = await storedInterface(t, "node003", "BOOTIF");
    assert.equal(row.item.macaddress, "aa:bb:cc:dd:ee:03");
    assert.equal(row.address?.ipaddress, "10.141.0.3");
  });

  test("rejects a MAC held by another node with 409 naming it", async () => {
    const response = await postInterfaces(t, "node002", [{ interface: "BOOTIF", macaddress: "aa:bb:cc:dd:ee:03" }]);
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /MAC address aa:bb:cc:dd:ee:03 is already used by interface BOOTIF of node "node003"/);
    assert.equal((await storedInterface(t, "node002", "BOOTIF")).item.macaddress, null);
  });

  test("rejects an address held by another node with 409 naming it", async () => {
    const response = await postInterfaces(t, "node003", [{ interface: "BOOTIF", ipaddress: "10.141.0.1" }]);
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /Address 10\.141\.0\.1 in network "cluster" is already used by interface BOOTIF of node "node001"/);
    assert.equal((await storedInterface(t, "node003", "BOOTIF")).address?.ipaddress, "10.141.0.3");
  });

  test("rejects the controller address with 409 even with force", async () => {
    const response = await postInterfaces(t, "node003", [{ interface: "BOOTIF", ipaddress: "10.141.255.254", force: true }]);
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /controller "controller"/);
  });

  test("takes an address from another node with force", async () => {
    const response = await postInterfaces(t, "node003", [{ interface: "BOOTIF", ipaddress: "10.141.0.1", force: true }]);
    assert.equal(response.status, 204);
    assert.equal((await storedInterface(t, "node003", "BOOTIF")).address?.ipaddress, "10.141.0.1");
    const previous = await storedInterface(t, "node001", "BOOTIF");
    assert.equal(previous.address?.ipaddress, null);
    assert.equal(previous.network, "cluster");
  });

  test("sets a fixed IPv4 address inside the network", async () => {
    assert.equal((await postInterfaces(t, "node001", [{ interface: "BOOTIF", ipaddress: "10.141.7.7" }])).status, 204);
    assert.equal((await storedInterface(t, "node001", "BOOTIF")).address?.ipaddress, "10.141.7.7");
  });

  test("clears addresses with an empty ipaddress", async () => {
    assert.equal((await postInterfaces(t, "node001", [{ interface: "BMC", ipaddress: "" }])).status, 204);
    const row = await storedInterface(t, "node001", "BMC");
    assert.equal(row.address?.ipaddress, null);
    assert.equal(row.network, "ipmi");
  });

  test("renames an interface", async () => {
    assert.equal((await postInterfaces(t, "node003", [{ interface: "eth1", newinterfacename: "ib0" }])).status, 204);
    assert.equal(await storedInterface(t, "node003", "eth1"), undefined);
    assert.equal((await storedInterface(t, "node003", "ib0")).address?.ipaddress, "10.149.0.1");
  });

  test("stores VLAN and bond settings", async () => {
    const response = await postInterfaces(t, "node002", [
      { interface: "vlan100", network: "ib", vlanid: 100, vlan_parent: "BOOTIF" },
      { interface: "bond0", network: "ib", bond_mode: "802.3ad", bond_slaves: "eth0, eth1" },
    ]);
    assert.equal(response.status, 204);
    const vlan = (await storedInterface(t, "node002", "vlan100")).item;
    assert.deepEqual([vlan.vlanid, vlan.vlan_parent], ["100", "BOOTIF"]);
    const bond = (await storedInterface(t, "node002", "bond0")).item;
    assert.deepEqual([bond.bond_mode, bond.bond_slaves], ["802.3ad", "eth0,eth1"]);
    assert.equal((await postInterfaces(t, "node002", [{ interface: "vlan100", vlanid: "" }])).status, 204);
    const cleared = (await storedInterface(t, "node002", "vlan100")).item;
    assert.deepEqual([cleared.vlanid, cleared.vlan_parent], [null, null]);
  });

  const errors: { title: string; node: string; entries: unknown[]; status: number; pattern: RegExp }[] = [
    { title: "address outside the network", node: "node003", entries: [{ interface: "BOOTIF", ipaddress: "10.200.0.1" }], status: 400, pattern: /ipaddress 10\.200\.0\.1 is outside network "cluster" \(10\.141\.0\.0\/16\)/ },
    { title: "invalid address", node: "node003", entries: [{ interface: "BOOTIF", ipaddress: "10.1.1" }], status: 400, pattern: /ipaddress.*not a valid IP address/ },
    { title: "unknown network", node: "node003", entries: [{ interface: "eth5", network: "nonet" }], status: 400, pattern: /network "nonet" does not exist/ },
    { title: "new interface without network", node: "node003", entries: [{ interface: "eth5", mtu: 9000 }], status: 400, pattern: /send network or ipaddress to create it/ },
    { title: "entry without changes", node: "node003", entries: [{ interface: "BOOTIF" }], status: 400, pattern: /send at least one of/ },
    { title: "mtu too small", node: "node003", entries: [{ interface: "BOOTIF", mtu: 67 }], status: 400, pattern: /mtu.*68 to 65535/ },
    { title: "mtu too large", node: "node003", entries: [{ interface: "BOOTIF", mtu: "65536" }], status: 400, pattern: /mtu.*68 to 65535/ },
    { title: "vlanid too large", node: "node003", entries: [{ interface: "BOOTIF", vlanid: 4095 }], status: 400, pattern: /vlanid.*1 to 4094/ },
    { title: "vlanid zero", node: "node003", entries: [{ interface: "BOOTIF", vlanid: 0 }], status: 400, pattern: /vlanid.*1 to 4094/ },
    { title: "mtu on a VLAN interface", node: "node003", entries: [{ interface: "vlan7", network: "ib", vlanid: 7, vlan_parent: "BOOTIF", mtu: 1500 }], status: 400, pattern: /mtu of .* is not allowed with vlan_parent/ },
    { title: "vlan_parent without vlanid", node: "node003", entries: [{ interface: "BOOTIF", vlan_parent: "eth0" }], status: 400, pattern: /vlan_parent "eth0" needs a vlanid/ },
    { title: "unknown bond mode", node: "node003", entries: [{ interface: "BOOTIF", bond_mode: "fastest" }], status: 400, pattern: /bond_mode "fastest" is not one of/ },
    { title: "bond slaves without mode", node: "node003", entries: [{ interface: "BOOTIF", bond_slaves: "eth0,eth1" }], status: 400, pattern: /needs a bond_mode/ },
    { title: "one bond slave", node: "node003", entries: [{ interface: "BOOTIF", bond_mode: "1", bond_slaves: "eth0" }], status: 400, pattern: /at least two interfaces/ },
    { title: "bond with vlan parent", node: "node003", entries: [{ interface: "BOOTIF", bond_mode: "1", vlanid: 5, vlan_parent: "eth0" }], status: 400, pattern: /both bond_mode and vlan_parent/ },
    { title: "invalid MAC", node: "node003", entries: [{ interface: "BOOTIF", macaddress: "aa:bb:cc" }], status: 400, pattern: /not a MAC address/ },
    { title: "unknown key", node: "node003", entries: [{ interface: "BOOTIF", speed: 10 }], status: 400, pattern: /unknown key/ },
    { title: "rename of a missing interface", node: "node003", entries: [{ interface: "eth9", newinterfacename: "eth8" }], status: 404, pattern: /has no interface "eth9"/ },
    { title: "rename onto an existing interface", node: "node003", entries: [{ interface: "ib0", newinterfacename: "BMC" }], status: 409, pattern: /already has an interface "BMC"/ },
    { title: "unknown node", node: "node099", entries: [{ interface: "BOOTIF", network: "cluster" }], status: 404, pattern: /Node "node099" does not exist/ },
    { title: "dhcp off without address", node: "node001", entries: [{ interface: "BMC", dhcp: false }], status: 400, pattern: /dhcp cannot be turned off/ },
  ];
  for (const item of errors) {
    test(`rejects ${item.title}`, async () => {
      const before = await t.db.orm.select().from(nodeInterface).orderBy(nodeInterface.id);
      const addressesBefore = await t.db.orm.select().from(ipAddress).orderBy(ipAddress.id);
      const response = await postInterfaces(t, item.node, item.entries);
      assert.equal(response.status, item.status);
      assert.match((await response.json()).message, item.pattern);
      assert.deepEqual(await t.db.orm.select().from(nodeInterface).orderBy(nodeInterface.id), before);
      assert.deepEqual(await t.db.orm.select().from(ipAddress).orderBy(ipAddress.id), addressesBefore);
    });
  }

  test("a failing entry rolls back the entries before it", async () => {
    const response = await postInterfaces(t, "node004", [
      { interface: "eth2", network: "ib" },
      { interface: "BOOTIF", ipaddress: "10.200.0.1" },
    ]);
    assert.equal(response.status, 400);
    assert.equal(await storedInterface(t, "node004", "eth2"), undefined);
  });
});

describe("GET and _delete of node interfaces", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("shows one interface", async () => {
    const response = await t.request("/config/node/node001/interfaces/BMC");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      config: { node: { node001: { interfaces: [{ interface: "BMC", ipaddress: "10.148.0.1", macaddress: null, network: "ipmi" }] } } },
    });
  });

  test("missing interface is 404", async () => {
    const response = await t.request("/config/node/node001/interfaces/eth7");
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /does not have interface "eth7"/);
  });

  test("invalid interface name in the path is 400", async () => {
    const response = await t.request("/config/node/node001/interfaces/bad%20name");
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /interface name "bad name" is invalid/);
  });

  test("deletes an interface with its address", async () => {
    const before = await storedInterface(t, "node001", "BMC");
    const response = await t.request("/config/node/node001/interfaces/BMC/_delete");
    assert.equal(response.status, 204);
    assert.equal(await storedInterface(t, "node001", "BMC"), undefined);
    assert.equal((await t.db.orm.select().from(ipAddress).where(eq(ipAddress.id, before.address!.id))).length, 0);
    const again = await t.request("/config/node/node001/interfaces/BMC/_delete");
    assert.equal(again.status, 404);
  });

  test("list of a node without interfaces is 404", async () => {
    await t.request("/config/node/node001/interfaces/BOOTIF/_delete");
    const response = await t.request("/config/node/node001/interfaces");
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /does not have any interface configured/);
  });
});

describe("syncNodeWithGroup", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  async function nodeId(name: string): Promise<number> {
    const [row] = await t.db.orm.select({ id: node.id }).from(node).where(eq(node.name, name));
    return row.id;
  }

  test("adds a new group interface to members and keeps existing ones", async () => {
    await t.db.write(async (tx) => {
      const [group] = await tx.select().from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
      const [ib] = await tx.select().from(network).where(eq(network.name, "ib"));
      await tx.insert(groupInterface).values({ group_id: group.id, interface: "ib0", network_id: ib.id, dhcp: true, options: "b3B0" });
      await syncNodeWithGroup(tx, await nodeId("node001"), t.clock.now());
    });
    const ib0 = await storedInterface(t, "node001", "ib0");
    assert.equal(ib0.address?.ipaddress, "10.149.0.1");
    assert.equal(ib0.address?.dhcp, true);
    assert.equal(ib0.item.options, "b3B0");
    assert.equal((await storedInterface(t, "node001", "BOOTIF")).address?.ipaddress, "10.141.0.1");
  });

  test("gives no address in a network that serves nodes from its pool", async () => {
    await t.db.write(async (tx) => {
      await tx.update(network).set({ dhcp: true, dhcp_nodes_in_pool: true, dhcp_range_begin: "10.149.1.0", dhcp_range_end: "10.149.1.255" }).where(eq(network.name, "ib"));
      await syncNodeWithGroup(tx, await nodeId("node002"), t.clock.now());
    });
    const ib0 = await storedInterface(t, "node002", "ib0");
    assert.equal(ib0.address?.ipaddress, null);
    assert.equal(ib0.address?.dhcp, true);
    assert.equal(ib0.network, "ib");
  });

  test("gives two interfaces in one network distinct addresses", async () => {
    const name = "node004";
    await t.db.write(async (tx) => {
      const [group] = await tx.insert(nodeGroup).values({ name: "twin-group" }).returning();
      const [ib] = await tx.select().from(network).where(eq(network.name, "ib"));
      await tx.insert(groupInterface).values([
        { group_id: group.id, interface: "ib0", network_id: ib.id },
        { group_id: group.id, interface: "ib1", network_id: ib.id },
      ]);
      await tx.update(network).set({ dhcp: false, dhcp_nodes_in_pool: false }).where(eq(network.id, ib.id));
      const id = await nodeId(name);
      await tx.update(node).set({ group_id: group.id }).where(eq(node.id, id));
      await syncNodeWithGroup(tx, id, t.clock.now());
    });
    const ib0 = await storedInterface(t, name, "ib0");
    const ib1 = await storedInterface(t, name, "ib1");
    assert.equal(ib0.address?.ipaddress, "10.149.0.2");
    assert.equal(ib1.address?.ipaddress, "10.149.0.3");
  });

  test("removes interfaces of the previous group", async () => {
    const id = await nodeId("node003");
    await t.db.write(async (tx) => {
      const [old] = await tx.select().from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
      const [next] = await tx.insert(nodeGroup).values({ name: "lean-group" }).returning();
      const [cluster] = await tx.select().from(network).where(eq(network.name, "cluster"));
      await tx.insert(groupInterface).values({ group_id: next.id, interface: "BOOTIF", network_id: cluster.id });
      await tx.update(node).set({ group_id: next.id }).where(eq(node.id, id));
      await syncNodeWithGroup(tx, id, t.clock.now(), old.id);
    });
    const names = await t.db.orm.select({ name: nodeInterface.interface }).from(nodeInterface).where(eq(nodeInterface.node_id, id));
    assert.deepEqual(names.map((item) => item.name), ["BOOTIF"]);
    assert.equal((await storedInterface(t, "node003", "BOOTIF")).address?.ipaddress, "10.141.0.3");
  });
});

describe("parallel node creation over HTTP", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("50 parallel creates get 50 distinct addresses", async () => {
    const server = serve({ fetch: t.app.fetch, hostname: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    const { port } = server.address() as AddressInfo;
    try {
      const names = Array.from({ length: 50 }, (_, index) => `node${String(index + 100).padStart(3, "0")}`);
      const responses = await Promise.all(names.map((name) =>
        fetch(`http://127.0.0.1:${port}/config/node/${name}`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-access-tokens": t.token },
          body: JSON.stringify({ config: { node: { [name]: { group: "compute-group" } } } }),
          signal: AbortSignal.timeout(30_000),
        })
      ));
      assert.deepEqual(responses.map((response) => response.status), names.map(() => 201));

      const rows = await t.db.orm
        .select({ address: ipAddress.ipaddress })
        .from(ipAddress)
        .innerJoin(nodeInterface, eq(nodeInterface.id, ipAddress.node_interface_id))
        .where(and(eq(nodeInterface.interface, "BOOTIF"), isNotNull(ipAddress.ipaddress)));
      const created = rows.map((row) => row.address).filter((address) => !["10.141.0.1", "10.141.0.2", "10.141.0.3", "10.141.0.4"].includes(address!));
      assert.equal(created.length, 50);
      assert.equal(new Set(created).size, 50);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
