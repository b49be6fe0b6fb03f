import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { cluster, controller, ipAddress } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

describe("/config/cluster", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  const post = (fields: Record<string, unknown>) => t.request("/config/cluster", { method: "POST", json: { config: { cluster: fields } } });

  test("GET shows the bootstrapped cluster and beacon controller", async () => {
    const response = await t.request("/config/cluster");
    assert.equal(response.status, 200);
    const { config } = await response.json();
    assert.equal(config.cluster.name, "mycluster");
    assert.equal(config.cluster.dnssec_enable, "N/A");
    assert.equal(config.cluster.controller.hostname, "controller");
    assert.equal(config.cluster.controller.ipaddress, "10.141.255.254");
    assert.equal(config.cluster.controller.luna_config, t.config.file);
  });

  test("POST updates fields and answers 204", async () => {
    const response = await post({ debug: true, technical_contacts: "ops@example.org", domain_search: "cluster example.org" });
    assert.equal(response.status, 204);
    const [row] = await t.db.orm.select().from(cluster);
    assert.equal(row.debug, true);
    assert.equal(row.technical_contacts, "ops@example.org");
    assert.equal(row.domain_search, "cluster,example.org");
  });

  test("POST moves the beacon controller address", async () => {
    assert.equal((await post({ controller: "10.141.255.250" })).status, 204);
    const [row] = await t.db.orm
      .select({ address: ipAddress.ipaddress })
      .from(ipAddress)
      .innerJoin(controller, eq(controller.id, ipAddress.controller_id));
    assert.equal(row.address, "10.141.255.250");
  });

  const rejected: [string, Record<string, unknown>, number, RegExp][] = [
    ["empty body", {}, 400, /Did not receive data/],
    ["invalid NTP name", { ntp_server: "not a host!" }, 400, /ntp_server/],
    ["invalid name server", { nameserver_ip: "10.0.0.300" }, 400, /nameserver_ip.*10\.0\.0\.300/],
    ["flag that is not a boolean", { debug: "perhaps" }, 400, /debug.*perhaps/],
    ["unsupported provision method", { provision_method: "torrent" }, 400, /provision_method "torrent"/],
    ["unknown key", { bogus: "1.2.3.4" }, 400, /unknown key "bogus"/],
    ["controller outside its network", { controller: "10.200.0.1" }, 400, /outside network "cluster"/],
    ["controller on a node's address", { controller: "10.141.0.1" }, 409, /interface BOOTIF of node "node001"/],
    ["unknown controller network", { controller_network: "nowhere" }, 400, /network "nowhere" does not exist/],
  ];
  for (const [name, fields, status, message] of rejected) {
    test(`POST rejects ${name} with ${status}`, async () => {
      const before = await t.db.orm.select().from(cluster);
      const response = await post(fields);
      assert.equal(response.status, status);
      assert.match((await response.json()).message, message);
      assert.deepEqual(await t.db.orm.select().from(cluster), before);
    });
  }

  test("POST with a body for another type is rejected naming the key", async () => {
    const response = await t.request("/config/cluster", { method: "POST", json: { config: { node: {} } } });
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /config\.node|config\.cluster/);
  });
});
