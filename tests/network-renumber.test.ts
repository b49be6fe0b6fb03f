import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { asc, eq } from "drizzle-orm";
import { ipAddress, network, node, nodeGroup, nodeInterface, reservedIpAddress } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

let t: TestApp;
beforeEach(async () => (t = await createTestApp()));
afterEach(() => t.close());

function post(name: string, fields: Record<string, unknown>) {
  return t.request(`/config/network/${name}`, { method: "POST", json: { config: { network: { [name]: fields } } } });
}

async function networkRow(name: string) {
  const [row] = await t.db.orm.select().from(network).where(eq(network.name, name));
  return row;
}

/** Every ip_address row, for comparing the whole table before and after a rejected change. */
function allAddresses() {
  return t.db.orm.select().from(ipAddress).orderBy(asc(ipAddress.id));
}

/** Address of each node's BOOTIF interface in the cluster network, keyed by node name. */
async function bootAddresses(): Promise<Map<string, string | null>> {
  const rows = await t.db.orm
    .select({ name: node.name, address: ipAddress.ipaddress })
    .from(ipAddress)
    .innerJoin(nodeInterface, eq(nodeInterface.id, ipAddress.node_interface_id))
    .innerJoin(node, eq(node.id, nodeInterface.node_id))
    .where(eq(nodeInterface.interface, "BOOTIF"));
  return new Map(rows.map((row) => [row.name, row.address]));
}

async function controllerAddress(): Promise<string | null> {
  const [row] = await t.db.orm.select().from(ipAddress).where(eq(ipAddress.controller_id, 1));
  return row.ipaddress;
}

/** Host address number `index` (0-based) of the bulk nodes: 10.141.1.1 upward, 250 per /24. */
function bulkHost(index: number): string {
  return `${1 + Math.floor(index / 250)}.${1 + (index % 250)}`;
}

/** Adds `count` nodes with a BOOTIF address in the cluster network through bulk inserts. */
async function addBulkNodes(count: number): Promise<void> {
  const [group] = await t.db.orm.select().from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
  const cluster = await networkRow("cluster");
  const chunk = 250;
  await t.db.write(async (tx) => {
    for (let start = 0; start < count; start += chunk) {
      const size = Math.min(chunk, count - start);
      const indexes = Array.from({ length: size }, (_, offset) => start + offset);
      const nodes = await tx
        .insert(node)
        .values(indexes.map((index) => ({ name: `bulk${String(index).padStart(4, "0")}`, group_id: group.id })))
        .returning({ id: node.id });
      const interfaces = await tx
        .insert(nodeInterface)
        .values(nodes.map((row) => ({ node_id: row.id, interface: "BOOTIF" })))
        .returning({ id: nodeInterface.id });
      await tx.insert(ipAddress).values(
        interfaces.map((row, offset) => ({ network_id: cluster.id, node_interface_id: row.id, ipaddress: `10.141.${bulkHost(indexes[offset])}` })),
      );
    }
  });
}

describe("network renumbering", () => {
  test("moves every address and keeps host parts", async () => {
    await t.request("/config/network/cluster/_nextfreeip");
    const response = await post("cluster", { network: "10.142.0.0/16", gateway: "10.142.255.254" });
    assert.equal(response.status, 204);

    const row = await networkRow("cluster");
    assert.equal(row.network, "10.142.0.0");
    assert.equal(row.subnet, 16);
    assert.equal(row.gateway, "10.142.255.254");
    assert.equal(row.dhcp, true);
    assert.equal(row.dhcp_range_begin, "10.142.155.0");
    assert.equal(row.dhcp_range_end, "10.142.165.0");
    assert.deepEqual(Object.fromEntries(await bootAddresses()), {
      node001: "10.142.0.1",
      node002: "10.142.0.2",
      node003: "10.142.0.3",
      node004: "10.142.0.4",
    });
    assert.equal(await controllerAddress(), "10.142.255.254");
    assert.equal((await t.db.orm.select().from(reservedIpAddress)).length, 0);
    const bmc = await t.db.orm.select().from(ipAddress).where(eq(ipAddress.network_id, (await networkRow("ipmi")).id));
    assert.deepEqual(bmc.map((item) => item.ipaddress).sort(), ["10.148.0.1", "10.148.0.2", "10.148.0.3", "10.148.0.4"]);
  });

  test("moves addresses out of the new DHCP range", async () => {
    const response = await post("cluster", {
      network: "10.142.0.0/16",
      gateway: "10.142.255.254",
      dhcp_range_begin: "10.142.0.1",
      dhcp_range_end: "10.142.0.2",
    });
    assert.equal(response.status, 204);
    assert.deepEqual(Object.fromEntries(await bootAddresses()), {
      node001: "10.142.0.5",
      node002: "10.142.0.6",
      node003: "10.142.0.3",
      node004: "10.142.0.4",
    });
  });

  test("skips the gateway when it picks a free address", async () => {
    const response = await post("cluster", {
      network: "10.142.0.0/16",
      gateway: "10.142.0.5",
      dhcp_range_begin: "10.142.0.1",
      dhcp_range_end: "10.142.0.1",
    });
    assert.equal(response.status, 204);
    assert.equal((await bootAddresses()).get("node001"), "10.142.0.6");
  });

  test("leaves a node that holds the new gateway address in place", async () => {
    const addresses = await allAddresses();
    const response = await post("cluster", { gateway: "10.141.0.1" });
    assert.equal(response.status, 204);
    assert.equal((await networkRow("cluster")).gateway, "10.141.0.1");
    assert.deepEqual(await allAddresses(), addresses);
  });

  test("shrinks the prefix with a new controller address and moves the DHCP range", async () => {
    const response = await post("cluster", { network: "10.141.0.0/24", controller: "10.141.0.254", gateway: "10.141.0.254" });
    assert.equal(response.status, 204);
    const row = await networkRow("cluster");
    assert.equal(row.subnet, 24);
    // 254 hosts: the 2,561-address range is cut to a tenth and starts half-way through the hosts.
    assert.equal(row.dhcp_range_begin, "10.141.0.124");
    assert.equal(row.dhcp_range_end, "10.141.0.149");
    assert.equal(await controllerAddress(), "10.141.0.254");
    assert.deepEqual([...(await bootAddresses()).values()].sort(), ["10.141.0.1", "10.141.0.2", "10.141.0.3", "10.141.0.4"]);
  });

  test("moves IPv6 addresses with the IPv6 prefix", async () => {
    assert.equal((await post("cluster", { network: "fd00:1::/64" })).status, 204);
    const cluster = await networkRow("cluster");
    await t.db.write((tx) => tx.update(ipAddress).set({ ipaddress_ipv6: "fd00:1::a" }).where(eq(ipAddress.ipaddress, "10.141.0.1")));
    assert.equal((await post("cluster", { network: "fd00:2::/64" })).status, 204);
    const [moved] = await t.db.orm.select().from(ipAddress).where(eq(ipAddress.ipaddress, "10.141.0.1"));
    assert.equal(moved.ipaddress_ipv6, "fd00:2::a");
    assert.equal(moved.network_id, cluster.id);
    assert.equal((await networkRow("cluster")).network_ipv6, "fd00:2::");
  });

  const rejected: [string, Record<string, unknown>, RegExp][] = [
    ["gateway left outside", { network: "10.142.0.0/16" }, /gateway "10\.141\.255\.254" is not a host address of network "cluster" \(10\.142\.0\.0\/16\): send a new gateway/],
    ["controller left outside", { network: "10.141.0.0/24", gateway: "10.141.0.254" }, /controller "controller" \(10\.141\.255\.254\): send a new address under key "controller"/],
    ["controller address outside", { network: "10.141.0.0/24", gateway: "10.141.0.254", controller: "10.141.1.1" }, /controller address 10\.141\.1\.1 is not a host address of network "cluster" \(10\.141\.0\.0\/24\)/],
    ["controller address in DHCP range", { network: "10.141.0.0/24", gateway: "10.141.0.254", controller: "10.141.0.130" }, /controller address 10\.141\.0\.130 is inside the DHCP range/],
    ["too few host addresses", { network: "10.141.0.8/30", dhcp: false, gateway: "10.141.0.10", controller: "10.141.0.10" }, /network 10\.141\.0\.8\/30 has 2 host addresses and 0 of them in the DHCP range, which leaves no room for the 5 addresses in use/],
  ];
  for (const [label, fields, pattern] of rejected) {
    test(`rejects ${label} and moves nothing`, async () => {
      const before = await networkRow("cluster");
      const addresses = await allAddresses();
      const response = await post("cluster", fields);
      assert.equal(response.status, 400);
      assert.match((await response.json()).message, pattern);
      assert.deepEqual(await networkRow("cluster"), before);
      assert.deepEqual(await allAddresses(), addresses);
    });
  }
});

describe("network renumbering with 1,000 nodes", () => {
  test("moves all nodes and the controller in one request", async () => {
    await addBulkNodes(1000);
    const before = await bootAddresses();
    assert.equal(before.size, 1004);

    const started = performance.now();
    const response = await post("cluster", { network: "10.142.0.0/16", gateway: "10.142.255.254" });
    const elapsed = performance.now() - started;
    assert.equal(response.status, 204);

    const after = await bootAddresses();
    assert.equal(after.size, 1004);
    for (const [name, address] of before) {
      assert.equal(after.get(name), address!.replace(/^10\.141\./, "10.142."), name);
    }
    assert.equal(after.get("bulk0999"), `10.142.${bulkHost(999)}`);
    assert.equal(await controllerAddress(), "10.142.255.254");
    assert.ok(elapsed < 20_000, `renumbering took ${Math.round(elapsed)} ms`);
  });

  test("rejects a prefix too small for them and leaves every row unchanged", async () => {
    await addBulkNodes(1000);
    const before = await networkRow("cluster");
    const addresses = await allAddresses();
    const reservations = await t.db.orm.select().from(reservedIpAddress);

    const response = await post("cluster", { network: "10.141.0.0/22", gateway: "10.141.3.254", controller: "10.141.3.254" });
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /network 10\.141\.0\.0\/22 has 1022 host addresses and 103 of them in the DHCP range, which leaves no room for the 1005 addresses in use/);
    assert.deepEqual(await networkRow("cluster"), before);
    assert.deepEqual(await allAddresses(), addresses);
    assert.deepEqual(await t.db.orm.select().from(reservedIpAddress), reservations);
  });
});
