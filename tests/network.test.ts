import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { ipAddress, network, reservedIpAddress, switchDevice } from "../lib/db/schema/index.ts";
import { createTestApp, TEST_EPOCH, type TestApp } from "./helpers.ts";

let t: TestApp;
beforeEach(async () => (t = await createTestApp()));
afterEach(() => t.close());

function post(name: string, fields: Record<string, unknown>, suffix = "") {
  return t.request(`/config/network/${name}${suffix}`, { method: "POST", json: { config: { network: { [name]: fields } } } });
}

async function networkRow(name: string) {
  const [row] = await t.db.orm.select().from(network).where(eq(network.name, name));
  return row;
}

/** Addresses stored for a network, keyed by row id. */
async function addressesOf(name: string): Promise<Map<number, { ipaddress: string | null; ipaddress_ipv6: string | null }>> {
  const row = await networkRow(name);
  const rows = await t.db.orm.select().from(ipAddress).where(eq(ipAddress.network_id, row.id));
  return new Map(rows.map((item) => [item.id, { ipaddress: item.ipaddress, ipaddress_ipv6: item.ipaddress_ipv6 }]));
}

async function bodyOf(response: Response) {
  const text = await response.text();
  return text === "" ? null : JSON.parse(text);
}

describe("GET /config/network", () => {
  test("lists every network with CIDR and subnet_ipv6", async () => {
    const response = await t.request("/config/network");
    assert.equal(response.status, 200);
    const { config } = await response.json();
    assert.deepEqual(Object.keys(config.network), ["cluster", "ib", "ipmi"]);
    assert.equal(config.network.cluster.network, "10.141.0.0/16");
    assert.equal(config.network.cluster.subnet_ipv6, null);
    assert.equal(config.network.cluster.non_authoritative, false);
    assert.equal("subnet" in config.network.cluster, false);
    assert.equal(config.network.ib.type, "infiniband");
  });

  test("answers 404 without networks", async () => {
    const empty = await createTestApp({ bootstrap: false });
    try {
      const response = await empty.request("/config/network");
      assert.equal(response.status, 404);
      assert.deepEqual(await response.json(), { message: "No networks are available" });
    } finally {
      await empty.close();
    }
  });

  test("requires a token", async () => {
    const response = await t.request("/config/network", { headers: { "x-access-tokens": "" } });
    assert.equal(response.status, 401);
  });
});

describe("GET /config/network/{name}", () => {
  test("shows the bootstrapped cluster network", async () => {
    const response = await t.request("/config/network/cluster");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      config: {
        network: {
          cluster: {
            name: "cluster",
            network: "10.141.0.0/16",
            network_ipv6: null,
            gateway: "10.141.255.254",
            gateway_ipv6: null,
            gateway_metric: 101,
            nameserver_ip: null,
            nameserver_ip_ipv6: null,
            ntp_server: null,
            dhcp: true,
            dhcp_nodes_in_pool: false,
            dhcp_nodes_only: false,
            dhcp_range_begin: "10.141.155.0",
            dhcp_range_begin_ipv6: null,
            dhcp_range_end: "10.141.165.0",
            dhcp_range_end_ipv6: null,
            dhcp_relay: null,
            zone: "internal",
            shared: null,
            type: "ethernet",
            comment: null,
          },
        },
      },
    });
  });

  test("omits DHCP keys when dhcp is off", async () => {
    const { config } = await (await t.request("/config/network/ipmi")).json();
    const view = config.network.ipmi;
    assert.equal(view.dhcp, false);
    for (const key of ["dhcp_range_begin", "dhcp_range_end", "dhcp_nodes_in_pool", "dhcp_nodes_only", "non_authoritative"]) {
      assert.equal(key in view, false, key);
    }
  });

  const errors: [string, string, number, RegExp][] = [
    ["unknown network", "/config/network/nosuch", 404, /Network "nosuch" does not exist/],
    ["upper-case name", "/config/network/Cluster", 400, /Network name "Cluster" is invalid/],
    ["reserved name", "/config/network/default", 400, /reserved word/],
  ];
  for (const [label, path, status, pattern] of errors) {
    test(`rejects ${label}`, async () => {
      const response = await t.request(path);
      assert.equal(response.status, status);
      assert.match((await response.json()).message, pattern);
    });
  }
});

describe("POST /config/network/{name} create", () => {
  test("creates a network with host bits masked", async () => {
    const response = await post("storage", { name: "storage", network: "10.150.3.4/16", comment: "NFS" });
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { message: "Network storage created successfully" });
    const row = await networkRow("storage");
    assert.equal(row.network, "10.150.0.0");
    assert.equal(row.subnet, 16);
    assert.equal(row.zone, "internal");
    assert.equal(row.type, "ethernet");
    assert.equal(row.dhcp, false);
    assert.equal(row.comment, "NFS");
  });

  test("sets gateway metric by zone", async () => {
    const cases: [string, string, number][] = [
      ["inner", "internal", 101],
      ["outer", "external", 100],
    ];
    for (const [name, zone, metric] of cases) {
      const third = name === "inner" ? 1 : 2;
      const response = await post(name, { network: `10.160.${third}.0/24`, zone, gateway: `10.160.${third}.1` });
      assert.equal(response.status, 201);
      const row = await networkRow(name);
      assert.equal(row.gateway, `10.160.${third}.1`);
      assert.equal(row.gateway_metric, metric, zone);
    }
  });

  test("creates a DHCP network with a range", async () => {
    const response = await post("lab", { network: "10.170.0.0/24", dhcp: "yes", dhcp_range_begin: "10.170.0.100", dhcp_range_end: "10.170.0.200" });
    assert.equal(response.status, 201);
    const row = await networkRow("lab");
    assert.equal(row.dhcp, true);
    assert.equal(row.dhcp_range_begin, "10.170.0.100");
    assert.equal(row.dhcp_range_end, "10.170.0.200");
  });

  test("creates an IPv6 network and stores it in the ipv6 columns", async () => {
    const response = await post("v6", { network: "fd12:3456::17/64", gateway: "fd12:3456::1", nameserver_ip: "fd12:3456::53" });
    assert.equal(response.status, 201);
    const row = await networkRow("v6");
    assert.equal(row.network, null);
    assert.equal(row.network_ipv6, "fd12:3456::");
    assert.equal(row.subnet_ipv6, 64);
    assert.equal(row.gateway_ipv6, "fd12:3456::1");
    assert.equal(row.nameserver_ip_ipv6, "fd12:3456::53");
    const view = (await (await t.request("/config/network/v6")).json()).config.network.v6;
    assert.equal(view.network_ipv6, "fd12:3456::/64");
  });

  const rejected: [string, Record<string, unknown>, number, RegExp][] = [
    ["no network", { comment: "x" }, 400, /network is required for a new network/],
    ["bad CIDR", { network: "10.150.0.0" }, 400, /storage\.network": "10\.150\.0\.0" is not a network in CIDR notation/],
    ["bad prefix", { network: "10.150.0.0/33" }, 400, /storage\.network": "10\.150\.0\.0\/33"/],
    ["overlap with cluster", { network: "10.141.5.0/24" }, 409, /overlaps network "cluster" \(10\.141\.0\.0\/16\)/],
    ["same CIDR as ipmi", { network: "10.148.0.0/16" }, 409, /overlaps network "ipmi"/],
    ["dhcp without range", { network: "10.150.0.0/16", dhcp: true }, 400, /dhcp_range_begin and dhcp_range_end are required/],
    ["range end missing", { network: "10.150.0.0/16", dhcp: true, dhcp_range_begin: "10.150.1.0" }, 400, /dhcp_range_end is required/],
    ["range outside", { network: "10.150.0.0/16", dhcp: true, dhcp_range_begin: "10.151.0.1", dhcp_range_end: "10.151.0.9" }, 400, /dhcp_range_begin "10\.151\.0\.1" is not a host address/],
    ["range reversed", { network: "10.150.0.0/16", dhcp: true, dhcp_range_begin: "10.150.0.9", dhcp_range_end: "10.150.0.1" }, 400, /is after dhcp_range_end/],
    ["bad zone", { network: "10.150.0.0/16", zone: "dmz" }, 400, /storage\.zone": must be internal or external/],
    ["gateway outside", { network: "10.150.0.0/16", gateway: "10.151.0.1" }, 400, /gateway "10\.151\.0\.1" is not a host address of network "storage" \(10\.150\.0\.0\/16\): send a new gateway/],
    ["gateway is broadcast", { network: "10.150.0.0/24", gateway: "10.150.0.255" }, 400, /gateway "10\.150\.0\.255"/],
    ["IPv6 gateway on IPv4 network", { network: "10.150.0.0/16", gateway: "fd00::1" }, 400, /gateway_ipv6 "fd00::1" needs an IPv6 network, and network "storage" has none/],
    ["bad gateway", { network: "10.150.0.0/16", gateway: "10.150.0" }, 400, /storage\.gateway": "10\.150\.0" is not a valid IP address/],
    ["bad nameserver", { network: "10.150.0.0/16", nameserver_ip: "10.150.0.1, ns1" }, 400, /storage\.nameserver_ip": "ns1" is not a valid IP address/],
    ["IPv6 NTP server", { network: "10.150.0.0/16", ntp_server: "fd00::1" }, 400, /storage\.ntp_server": "fd00::1" is not a host name or IPv4 address/],
    ["unknown key", { network: "10.150.0.0/16", bogus: "10.0.0.1" }, 400, /unknown key "bogus"/],
    ["unknown key with text", { network: "10.150.0.0/16", colour: "red" }, 400, /unknown key "colour"/],
    ["relay without shared", { network: "10.150.0.0/16", dhcp_relay: "10.150.0.1" }, 400, /dhcp_relay can only be set on a shared network/],
    ["shared unknown", { network: "10.150.0.0/16", shared: "nosuch" }, 400, /shared network "nosuch" does not exist/],
    ["both DHCP modes", { network: "10.150.0.0/16", dhcp_nodes_only: true, dhcp_nodes_in_pool: true }, 400, /mutually exclusive/],
    ["newnetname on create", { network: "10.150.0.0/16", newnetname: "other" }, 404, /does not exist, so it cannot be renamed/],
    ["name differs", { name: "other", network: "10.150.0.0/16" }, 400, /differs from the network "storage"/],
    ["bad dhcp flag", { network: "10.150.0.0/16", dhcp: "maybe" }, 400, /storage\.dhcp": must be true or false, not "maybe"/],
    ["controller key", { network: "10.150.0.0/16", controller: "10.150.0.1" }, 400, /controller "controller" has no address in network "storage"/],
    ["clear with values of that family", { network: "10.150.0.0/16", clear: "ipv4" }, 400, /clear "ipv4" cannot be combined with IPv4 values/],
    ["bad controller address", { network: "10.150.0.0/16", controller: "x" }, 400, /controller address "x" for key "controller" is not a valid IP address/],
  ];
  for (const [label, fields, status, pattern] of rejected) {
    test(`rejects ${label}`, async () => {
      const response = await post("storage", fields);
      assert.equal(response.status, status);
      assert.match((await response.json()).message, pattern);
      assert.equal(await networkRow("storage"), undefined);
    });
  }

  test("rejects a body for another network", async () => {
    const response = await t.request("/config/network/storage", { method: "POST", json: { config: { network: { other: { network: "10.150.0.0/16" } } } } });
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /config\.network\.storage/);
  });

  test("rejects an empty field set", async () => {
    const response = await post("storage", {});
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /no fields/);
  });
});

describe("POST /config/network/{name} update", () => {
  test("updates fields with 204 and no body", async () => {
    const response = await post("cluster", { comment: "provisioning", ntp_server: "ntp.example.org", nameserver_ip: "10.141.255.254, 10.141.255.253" });
    assert.equal(response.status, 204);
    assert.equal(await response.text(), "");
    const row = await networkRow("cluster");
    assert.equal(row.comment, "provisioning");
    assert.equal(row.ntp_server, "ntp.example.org");
    assert.equal(row.nameserver_ip, "10.141.255.254,10.141.255.253");
    assert.equal(row.gateway, "10.141.255.254");
    assert.equal(row.dhcp, true);
  });

  test("adds and clears IPv6 on a network", async () => {
    assert.equal((await post("cluster", { network: "fd00:141::/64", gateway: "fd00:141::1", dhcp_range_begin: "fd00:141::1000", dhcp_range_end: "fd00:141::2000" })).status, 204);
    let row = await networkRow("cluster");
    assert.equal(row.network, "10.141.0.0");
    assert.equal(row.network_ipv6, "fd00:141::");
    assert.equal(row.subnet_ipv6, 64);
    assert.equal(row.gateway, "10.141.255.254");
    assert.equal(row.gateway_ipv6, "fd00:141::1");
    assert.equal(row.dhcp_range_begin_ipv6, "fd00:141::1000");
    await t.db.write((tx) => tx.update(ipAddress).set({ ipaddress_ipv6: "fd00:141::5" }).where(eq(ipAddress.ipaddress, "10.141.0.1")));

    assert.equal((await post("cluster", { clear: "ipv6" })).status, 204);
    row = await networkRow("cluster");
    assert.equal(row.network_ipv6, null);
    assert.equal(row.subnet_ipv6, null);
    assert.equal(row.gateway_ipv6, null);
    assert.equal(row.dhcp_range_begin_ipv6, null);
    assert.equal(row.dhcp_range_end_ipv6, null);
    const [held] = await t.db.orm.select().from(ipAddress).where(eq(ipAddress.ipaddress, "10.141.0.1"));
    assert.equal(held.ipaddress_ipv6, null);
  });

  test("clears IPv4 and keeps IPv6 addresses", async () => {
    assert.equal((await post("ib", { network: "fd00:149::/64" })).status, 204);
    const before = await addressesOf("ib");
    assert.equal((await post("ib", { clear: "ipv4" })).status, 204);
    const row = await networkRow("ib");
    assert.equal(row.network, null);
    assert.equal(row.subnet, null);
    assert.equal(row.network_ipv6, "fd00:149::");
    assert.deepEqual(await addressesOf("ib"), before);
  });

  const rejected: [string, string, Record<string, unknown>, number, RegExp][] = [
    ["clear ipv4 without IPv6", "cluster", { clear: "ipv4" }, 400, /clear "ipv4" needs an IPv6 network to remain/],
    ["clear with values", "cluster", { clear: "ipv4", network: "10.142.0.0/16" }, 400, /cannot be combined with IPv4 values/],
    ["rename to existing", "cluster", { newnetname: "ipmi" }, 409, /Network "ipmi" already exists/],
    ["invalid rename", "cluster", { newnetname: "Bad_Name" }, 400, /newnetname "Bad_Name" is invalid/],
    ["dhcp off while nodes in pool", "cluster", { dhcp_nodes_in_pool: true, dhcp: false }, 400, /dhcp cannot be off while dhcp_nodes_in_pool is on/],
    ["range while nodes only", "cluster", { dhcp_nodes_only: true, dhcp_range_begin: "10.141.150.0" }, 400, /dhcp_range_begin cannot be set while dhcp_nodes_only is on/],
    ["gateway in DHCP range", "cluster", { gateway: "10.141.160.1" }, 400, /gateway "10\.141\.160\.1" is inside the DHCP range/],
    ["relay on unshared network", "cluster", { dhcp_relay: "10.141.0.250" }, 400, /dhcp_relay can only be set on a shared network/],
    ["shared with itself", "cluster", { shared: "cluster" }, 400, /names this network itself/],
    ["overlap on update", "ib", { network: "10.148.128.0/17" }, 409, /overlaps network "ipmi"/],
    ["unknown controller key", "cluster", { controller_two: "10.141.255.250" }, 400, /unknown key "controller_two"/],
    ["empty controller address", "cluster", { controller: "" }, 400, /controller needs an address/],
  ];
  for (const [label, name, fields, status, pattern] of rejected) {
    test(`rejects ${label}`, async () => {
      const before = await networkRow(name);
      const addresses = await addressesOf(name);
      const response = await post(name, fields);
      assert.equal(response.status, status);
      assert.match((await response.json()).message, pattern);
      assert.deepEqual(await networkRow(name), before);
      assert.deepEqual(await addressesOf(name), addresses);
    });
  }

  test("rejects a second DHCP mode while the first is on", async () => {
    assert.equal((await post("cluster", { dhcp_nodes_only: true })).status, 204);
    const response = await post("cluster", { dhcp_nodes_in_pool: true });
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /dhcp_nodes_only is on and excludes dhcp_nodes_in_pool: turn dhcp_nodes_only off first/);
  });

  test("dhcp_nodes_only wipes the ranges and turns dhcp on", async () => {
    assert.equal((await post("ipmi", { dhcp_nodes_only: "yes" })).status, 204);
    const row = await networkRow("ipmi");
    assert.equal(row.dhcp, true);
    assert.equal(row.dhcp_nodes_only, true);
    assert.equal(row.dhcp_range_begin, null);
    assert.equal(row.dhcp_range_end, null);
  });

  test("clears type, shared and comment with empty values", async () => {
    assert.equal((await post("ib", { shared: "cluster", comment: "fabric" })).status, 204);
    assert.equal((await post("ib", { shared: "", comment: "", type: "" })).status, 204);
    const row = await networkRow("ib");
    assert.equal(row.shared, null);
    assert.equal(row.comment, null);
    assert.equal(row.type, "ethernet");
  });

  test("dhcp_relay is accepted on a shared network", async () => {
    assert.equal((await post("ib", { shared: "cluster", dhcp_relay: "10.149.0.250" })).status, 204);
    const row = await networkRow("ib");
    assert.equal(row.shared, "cluster");
    assert.equal(row.dhcp_relay, "10.149.0.250");
  });

  test("renames a network and keeps its addresses and references", async () => {
    assert.equal((await post("ib", { shared: "cluster" })).status, 204);
    const before = await networkRow("cluster");
    const response = await post("cluster", { newnetname: "provision" });
    assert.equal(response.status, 204);
    const renamed = await networkRow("provision");
    assert.equal(renamed.id, before.id);
    assert.equal(await networkRow("cluster"), undefined);
    assert.equal((await networkRow("ib")).shared, "provision");
    assert.equal((await addressesOf("provision")).size, 5);
    assert.equal((await t.request("/config/network/cluster")).status, 404);
  });

  test("moves an address that a new DHCP range covers", async () => {
    const response = await post("cluster", { dhcp_range_begin: "10.141.0.2", dhcp_range_end: "10.141.0.3" });
    assert.equal(response.status, 204);
    const stored = [...(await addressesOf("cluster")).values()].map((item) => item.ipaddress).sort();
    assert.deepEqual(stored, ["10.141.0.1", "10.141.0.4", "10.141.0.5", "10.141.0.6", "10.141.255.254"]);
  });

  test("moves the controller to an address sent under its key", async () => {
    const response = await post("cluster", { controller: "10.141.255.250", gateway: "10.141.255.250" });
    assert.equal(response.status, 204);
    const [controllerRow] = await t.db.orm.select().from(ipAddress).where(eq(ipAddress.controller_id, 1));
    assert.equal(controllerRow.ipaddress, "10.141.255.250");
    assert.equal((await networkRow("cluster")).gateway, "10.141.255.250");
  });

  test("rejects a controller address a node holds", async () => {
    const response = await post("cluster", { controller: "10.141.0.2" });
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /10\.141\.0\.2 .*already used by interface BOOTIF of node "node002"/);
    const [controllerRow] = await t.db.orm.select().from(ipAddress).where(eq(ipAddress.controller_id, 1));
    assert.equal(controllerRow.ipaddress, "10.141.255.254");
  });
});

describe("POST /config/network/{name}/_clone", () => {
  test("copies settings into the new network by offset", async () => {
    const response = await post("cluster", { newnetname: "cluster2", network: "10.151.0.0/16", comment: "copy" }, "/_clone");
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { message: "Network cluster cloned as cluster2 successfully" });
    const row = await networkRow("cluster2");
    assert.equal(row.network, "10.151.0.0");
    assert.equal(row.subnet, 16);
    assert.equal(row.gateway, "10.151.255.254");
    assert.equal(row.gateway_metric, 101);
    assert.equal(row.dhcp, true);
    assert.equal(row.dhcp_range_begin, "10.151.155.0");
    assert.equal(row.dhcp_range_end, "10.151.165.0");
    assert.equal(row.comment, "copy");
    assert.equal((await addressesOf("cluster2")).size, 0);
    assert.equal((await networkRow("cluster")).comment, null);
  });

  const rejected: [string, string, Record<string, unknown>, number, RegExp][] = [
    ["missing newnetname", "cluster", { network: "10.151.0.0/16" }, 400, /newnetname is required/],
    ["missing network", "cluster", { newnetname: "cluster2" }, 400, /network is required to clone/],
    ["existing name", "cluster", { newnetname: "ipmi", network: "10.151.0.0/16" }, 409, /Network "ipmi" already exists/],
    ["overlapping network", "cluster", { newnetname: "cluster2", network: "10.141.0.0/24" }, 409, /overlaps network "cluster"/],
    ["unknown source", "nosuch", { newnetname: "cluster2", network: "10.151.0.0/16" }, 404, /Network "nosuch" does not exist/],
  ];
  for (const [label, name, fields, status, pattern] of rejected) {
    test(`rejects ${label}`, async () => {
      const response = await post(name, fields, "/_clone");
      assert.equal(response.status, status);
      assert.match((await response.json()).message, pattern);
      assert.equal(await networkRow("cluster2"), undefined);
    });
  }

  test("answers GET with 405", async () => {
    assert.equal((await t.request("/config/network/cluster/_clone")).status, 405);
  });
});

describe("GET /config/network/{name}/_delete", () => {
  test("deletes an unused network and clears references to it", async () => {
    await t.db.write((tx) => tx.delete(ipAddress).where(eq(ipAddress.network_id, 3)));
    assert.equal((await post("storage", { network: "10.150.0.0/16", shared: "ib", dhcp_relay: "10.150.0.1" })).status, 201);
    const response = await t.request("/config/network/ib/_delete");
    assert.equal(response.status, 204);
    assert.equal(await networkRow("ib"), undefined);
    const storage = await networkRow("storage");
    assert.equal(storage.shared, null);
    assert.equal(storage.dhcp_relay, null);
    const again = await t.request("/config/network/ib/_delete");
    assert.equal(again.status, 404);
  });

  test("rejects deleting a network in use, naming its users", async () => {
    const cases: [string, RegExp[]][] = [
      ["cluster", [/1 controller: controller/, /4 node interfaces: node001 BOOTIF, node002 BOOTIF/, /1 group interface: compute-group BOOTIF/]],
      ["ipmi", [/4 node interfaces: node001 BMC/, /1 group interface: compute-group BMC/]],
    ];
    for (const [name, patterns] of cases) {
      const response = await t.request(`/config/network/${name}/_delete`);
      assert.equal(response.status, 409, name);
      const { message } = await response.json();
      assert.match(message, new RegExp(`Cannot delete network "${name}": it is still used by`));
      for (const pattern of patterns) assert.match(message, pattern);
      assert.notEqual(await networkRow(name), undefined);
    }
  });

  test("rejects deleting a network a switch uses", async () => {
    assert.equal((await post("mgmt", { network: "10.180.0.0/16" })).status, 201);
    const mgmt = await networkRow("mgmt");
    const [switchRow] = await t.db.orm.select().from(switchDevice).where(eq(switchDevice.name, "switch01"));
    await t.db.write((tx) => tx.insert(ipAddress).values({ network_id: mgmt.id, ipaddress: "10.180.0.10", switch_id: switchRow.id }));
    const response = await t.request("/config/network/mgmt/_delete");
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /1 switch: switch01/);
  });

  test("answers POST with 405", async () => {
    assert.equal((await t.request("/config/network/ib/_delete", { method: "POST" })).status, 405);
  });
});

describe("GET /config/network/{name}/{ipaddr}", () => {
  test("reports the state of each address", async () => {
    await t.request("/config/network/cluster/_nextfreeip");
    const cases: [string, Record<string, string>][] = [
      ["10.141.0.1", { status: "taken", owner: 'interface BOOTIF of node "node001"' }],
      ["10.141.255.254", { status: "taken", owner: 'controller "controller"' }],
      ["10.141.0.5", { status: "reserved" }],
      ["10.141.0.200", { status: "free" }],
      ["10.141.160.7", { status: "dhcp" }],
      ["10.141.0.0", { status: "unavailable", reason: "network address" }],
      ["10.141.255.255", { status: "unavailable", reason: "broadcast address" }],
    ];
    for (const [address, expected] of cases) {
      const response = await t.request(`/config/network/cluster/${address}`);
      assert.equal(response.status, 200, address);
      assert.deepEqual(await response.json(), { config: { network: { [address]: expected } } });
    }
  });

  test("reports an unheld gateway as unavailable", async () => {
    assert.equal((await post("ipmi", { gateway: "10.148.255.1" })).status, 204);
    const { config } = await (await t.request("/config/network/ipmi/10.148.255.1")).json();
    assert.deepEqual(config.network["10.148.255.1"], { status: "unavailable", reason: "gateway" });
  });

  const missing: [string, string, RegExp][] = [
    ["address outside", "/config/network/cluster/10.150.0.1", /Address 10\.150\.0\.1 is not in network "cluster" \(10\.141\.0\.0\/16\)/],
    ["IPv6 on IPv4 network", "/config/network/cluster/fd00::1", /not in network "cluster"/],
    ["invalid address", "/config/network/cluster/10.141.0", /"10\.141\.0" is not a valid IP address/],
    ["unknown network", "/config/network/nosuch/10.141.0.1", /Network "nosuch" does not exist/],
  ];
  for (const [label, path, pattern] of missing) {
    test(`answers 404 for ${label}`, async () => {
      const response = await t.request(path);
      assert.equal(response.status, 404);
      assert.match((await response.json()).message, pattern);
    });
  }

  test("answers POST with 405", async () => {
    assert.equal((await t.request("/config/network/cluster/10.141.0.1", { method: "POST" })).status, 405);
  });
});

describe("GET /config/network/{name}/_nextfreeip", () => {
  test("reserves a different address per call until the reservation expires", async () => {
    const first = await t.request("/config/network/cluster/_nextfreeip");
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { config: { network: { cluster: { nextip: "10.141.0.5" } } } });
    const second = await bodyOf(await t.request("/config/network/cluster/_nextfreeip"));
    assert.equal(second.config.network.cluster.nextip, "10.141.0.6");

    const reservations = await t.db.orm.select().from(reservedIpAddress);
    assert.deepEqual(reservations.map((row) => [row.ipaddress, row.expires_at]), [
      ["10.141.0.5", TEST_EPOCH + 600_000],
      ["10.141.0.6", TEST_EPOCH + 600_000],
    ]);

    t.clock.advance(600_000);
    const status = await bodyOf(await t.request("/config/network/cluster/10.141.0.6"));
    assert.equal(status.config.network["10.141.0.6"].status, "free");
    const third = await bodyOf(await t.request("/config/network/cluster/_nextfreeip"));
    assert.equal(third.config.network.cluster.nextip, "10.141.0.5");
    const remaining = await t.db.orm.select().from(reservedIpAddress);
    assert.deepEqual(remaining.map((row) => [row.ipaddress, row.expires_at]), [["10.141.0.5", TEST_EPOCH + 1_200_000]]);
  });

  test("gives concurrent callers different addresses", async () => {
    const responses = await Promise.all(Array.from({ length: 5 }, () => t.request("/config/network/cluster/_nextfreeip")));
    const addresses = await Promise.all(responses.map(async (response) => (await response.json()).config.network.cluster.nextip));
    assert.deepEqual([...addresses].sort(), ["10.141.0.5", "10.141.0.6", "10.141.0.7", "10.141.0.8", "10.141.0.9"]);
    assert.equal((await t.db.orm.select().from(reservedIpAddress)).length, 5);
  });

  test("returns an IPv6 address on an IPv6 network", async () => {
    assert.equal((await post("v6", { network: "fd00:5::/64" })).status, 201);
    const body = await bodyOf(await t.request("/config/network/v6/_nextfreeip"));
    assert.equal(body.config.network.v6.nextip, "fd00:5::1");
    const status = await bodyOf(await t.request("/config/network/v6/fd00:5::1"));
    assert.deepEqual(status.config.network["fd00:5::1"], { status: "reserved" });
  });

  test("answers 404 when the network is full", async () => {
    assert.equal((await post("tiny", { network: "10.190.0.0/30" })).status, 201);
    const addresses: string[] = [];
    for (let i = 0; i < 2; i++) addresses.push((await bodyOf(await t.request("/config/network/tiny/_nextfreeip"))).config.network.tiny.nextip);
    assert.deepEqual(addresses, ["10.190.0.1", "10.190.0.2"]);
    const full = await t.request("/config/network/tiny/_nextfreeip");
    assert.equal(full.status, 404);
    assert.match((await full.json()).message, /Network "tiny" has no free address/);
  });

  test("skips the gateway and the DHCP range", async () => {
    assert.equal((await post("tiny", { network: "10.190.0.0/29", gateway: "10.190.0.1", dhcp: true, dhcp_range_begin: "10.190.0.2", dhcp_range_end: "10.190.0.4" })).status, 201);
    const body = await bodyOf(await t.request("/config/network/tiny/_nextfreeip"));
    assert.equal(body.config.network.tiny.nextip, "10.190.0.5");
  });

  test("answers 404 for an unknown network and 405 for POST", async () => {
    assert.equal((await t.request("/config/network/nosuch/_nextfreeip")).status, 404);
    assert.equal((await t.request("/config/network/cluster/_nextfreeip", { method: "POST", json: {} })).status, 405);
    assert.equal((await t.db.orm.select().from(reservedIpAddress)).length, 0);
  });
});

describe("GET /config/network/{name}/_member", () => {
  test("lists held addresses in address order", async () => {
    const response = await t.request("/config/network/cluster/_member");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      config: {
        network: {
          cluster: {
            taken: [
              { ipaddress: "10.141.0.1", device: "node001" },
              { ipaddress: "10.141.0.2", device: "node002" },
              { ipaddress: "10.141.0.3", device: "node003" },
              { ipaddress: "10.141.0.4", device: "node004" },
              { ipaddress: "10.141.255.254", device: "controller" },
            ],
          },
        },
      },
    });
  });

  test("lists nothing for an empty network and 404 for an unknown one", async () => {
    const empty = await bodyOf(await t.request("/config/network/ib/_member"));
    assert.deepEqual(empty, { config: { network: { ib: { taken: [] } } } });
    assert.equal((await t.request("/config/network/nosuch/_member")).status, 404);
  });
});
