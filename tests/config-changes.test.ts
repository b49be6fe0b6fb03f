import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { changesPublishedData } from "../lib/config-changes.ts";
import { flushServiceRegeneration } from "../lib/dhcp-dns-regeneration.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

describe("changesPublishedData", () => {
  const cases: [string, string, number, boolean][] = [
    ["POST", "/config/node/{name}", 201, true],
    ["POST", "/config/node/{name}/interfaces", 204, true],
    ["GET", "/config/node/{name}/_delete", 204, true],
    ["GET", "/config/node/{name}", 200, false],
    ["POST", "/config/node/{name}", 400, false],
    ["GET", "/config/network/{name}/_nextfreeip", 200, false],
    ["POST", "/config/node/{name}/_osgrab", 200, false],
    ["POST", "/config/cluster", 204, true],
    ["POST", "/config/switch/{name}/_clone", 201, true],
    ["POST", "/config/osimage/{name}", 204, false],
    ["POST", "/config/secrets/node/{name}", 201, false],
    ["POST", "/config/networkx", 201, false],
  ];
  for (const [method, route, status, expected] of cases) {
    test(`${method} ${route} ${status} is ${expected ? "" : "not "}a change`, () => {
      assert.equal(changesPublishedData(method, route, status), expected);
    });
  }
});

describe("automatic DHCP regeneration", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("a node MAC change reaches the generated dhcpd.conf", async () => {
    const response = await t.request("/config/node/node002/interfaces", {
      method: "POST",
      json: { config: { node: { node002: { interfaces: [{ interface: "BOOTIF", macaddress: "52:54:00:aa:bb:02" }] } } } },
    });
    assert.equal(response.status, 204);
    await flushServiceRegeneration(t.services);
    assert.ok(existsSync(t.config.dhcp.configPath), "no DHCP configuration was written");
    assert.match(readFileSync(t.config.dhcp.configPath, "utf8"), /52:54:00:aa:bb:02/);
  });
});
