import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { and, eq } from "drizzle-orm";
import { cluster, ipAddress, network, node, nodeInterface, otherDevice, switchDevice } from "../lib/db/schema/index.ts";
import { nextSerial, parseZoneSerial, reverseName } from "../lib/dns.ts";
import { regenerateDns } from "../lib/dns-service.ts";
import { runCommand } from "../lib/hardware/command.ts";
import { ConfigCheckError, locateProgram } from "../lib/service-control.ts";
import { Templates } from "../lib/templates.ts";
import { setBootstrapMacs, writeFakeServiceCommand } from "./dhcp-dns-fixtures.ts";
import { createTestApp, TEST_EPOCH, type TestApp } from "./helpers.ts";

const EPOCH_SECONDS = TEST_EPOCH / 1000;

describe("BIND zones", () => {
  let t: TestApp;
  let fake: ReturnType<typeof writeFakeServiceCommand>;
  let fakeDirectory: string;
  const zonePath = (zone: string) => join(t.config.dns.zoneDirectory, `${zone}.luna.zone`);
  const zoneText = (zone: string) => readFileSync(zonePath(zone), "utf8");

  before(async () => {
    fakeDirectory = mkdtempSync(join(tmpdir(), "luna2-fake-"));
    fake = writeFakeServiceCommand(fakeDirectory);
    t = await createTestApp({ configExtra: `[SERVICES]\nCOMMAND = ${fake.path}\nCOOLDOWN = 1s\n` });
    t.hardware.reply = (spec) => runCommand(spec);
    await setBootstrapMacs(t.db);
    await t.db.write(async (tx) => {
      const [clusterNetwork] = await tx.select().from(network).where(eq(network.name, "cluster"));
      await tx.update(network).set({ network_ipv6: "fd00:141::", subnet_ipv6: 64 }).where(eq(network.id, clusterNetwork.id));
      const [node001] = await tx.select().from(node).where(eq(node.name, "node001"));
      const [bootif] = await tx.select().from(nodeInterface).where(and(eq(nodeInterface.node_id, node001.id), eq(nodeInterface.interface, "BOOTIF")));
      await tx.update(ipAddress).set({ ipaddress_ipv6: "fd00:141::1" }).where(eq(ipAddress.node_interface_id, bootif.id));
      const [eth1] = await tx.insert(nodeInterface).values({ node_id: node001.id, interface: "eth1.100" }).returning();
      await tx.insert(ipAddress).values({ network_id: clusterNetwork.id, ipaddress: "10.141.1.1", node_interface_id: eth1.id });
      const [switch01] = await tx.select().from(switchDevice).where(eq(switchDevice.name, "switch01"));
      await tx.insert(ipAddress).values({ network_id: clusterNetwork.id, ipaddress: "10.141.250.1", switch_id: switch01.id });
    });
  });
  after(async () => {
    await t.close();
    rmSync(fakeDirectory, { recursive: true, force: true });
  });

  test("regeneration installs zones the BIND tools accept", async () => {
    const result = await regenerateDns(t.services, { mode: "changed" });
    assert.equal(result.reloaded, true);
    assert.deepEqual(result.problems, []);
    const files = readdirSync(t.config.dns.zoneDirectory).sort();
    assert.deepEqual(files, [
      "0.141.10.in-addr.arpa.luna.zone",
      "0.148.10.in-addr.arpa.luna.zone",
      "0.0.0.0.0.0.0.0.1.4.1.0.0.0.d.f.ip6.arpa.luna.zone",
      "1.141.10.in-addr.arpa.luna.zone",
      "250.141.10.in-addr.arpa.luna.zone",
      "255.141.10.in-addr.arpa.luna.zone",
      "cluster.luna.zone",
      "ib.luna.zone",
      "ipmi.luna.zone",
      "named.luna2.zones",
    ].sort());
    for (const file of files.filter((name) => name.endsWith(".luna.zone"))) {
      await runCommand({ program: locateProgram("named-checkzone"), args: [file.slice(0, -".luna.zone".length), join(t.config.dns.zoneDirectory, file)], timeoutMs: 30_000 });
    }
    await runCommand({ program: locateProgram("named-checkconf"), args: [t.config.dns.namedConfPath], timeoutMs: 30_000 });
    assert.deepEqual(fake.calls().map((call) => call.slice(1)), [["reload", "named"]]);
  });

  test("forward zone has SOA timers and host records", () => {
    const text = zoneText("cluster");
    assert.match(text, /^\$ORIGIN cluster\.\n\$TTL 3600\n/m);
    assert.match(text, /@ IN SOA controller\.cluster\. root\.cluster\. \(\n    1767225600 ; serial\n    86400 ; refresh\n    14400 ; retry\n    3628800 ; expire\n    3600 \) ; minimum/);
    assert.match(text, /^@ IN NS controller\.cluster\.$/m);
    assert.match(text, /^controller IN A 10\.141\.255\.254$/m);
    assert.match(text, /^node001 IN A 10\.141\.0\.1$/m);
    assert.match(text, /^node001 IN AAAA fd00:141::1$/m);
    assert.match(text, /^node001-eth1-100 IN A 10\.141\.1\.1$/m);
    assert.match(text, /^node004 IN A 10\.141\.0\.4$/m);
    assert.match(text, /^switch01 IN A 10\.141\.250\.1$/m);
  });

  test("every zone lists the name server address", () => {
    assert.match(zoneText("ipmi"), /^controller IN A 10\.141\.255\.254$/m);
    assert.match(zoneText("ipmi"), /^node002 IN A 10\.148\.0\.2$/m);
    assert.match(zoneText("ib"), /^@ IN NS controller\.ib\.\ncontroller IN A 10\.141\.255\.254\n$/m);
  });

  test("reverse zones point back to the hosts", () => {
    assert.match(zoneText("0.141.10.in-addr.arpa"), /^1 IN PTR node001\.cluster\.\n2 IN PTR node002\.cluster\.\n3 IN PTR node003\.cluster\.\n4 IN PTR node004\.cluster\.\n$/m);
    assert.match(zoneText("1.141.10.in-addr.arpa"), /^1 IN PTR node001-eth1-100\.cluster\.$/m);
    assert.match(zoneText("255.141.10.in-addr.arpa"), /^254 IN PTR controller\.cluster\.$/m);
    assert.match(zoneText("0.148.10.in-addr.arpa"), /^1 IN PTR node001\.ipmi\.$/m);
    assert.match(zoneText("0.0.0.0.0.0.0.0.1.4.1.0.0.0.d.f.ip6.arpa"), /^1\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0 IN PTR node001\.cluster\.$/m);
  });

  test("zone list names every zone file", () => {
    const text = readFileSync(t.config.dns.namedConfPath, "utf8");
    assert.match(text, new RegExp(`zone "cluster" IN \\{\\n    type master;\\n    file "${zonePath("cluster")}";\\n    allow-update \\{ none; \\};\\n\\};`));
    assert.equal(text.match(/^zone /gm)?.length, 9);
  });

  test("two regenerations in one second get increasing serials", async () => {
    const before = (await t.db.orm.select().from(cluster))[0].dns_serial;
    assert.equal(before, EPOCH_SECONDS);
    await regenerateDns(t.services, { mode: "always" });
    await regenerateDns(t.services, { mode: "always" });
    const [row] = await t.db.orm.select().from(cluster);
    assert.equal(row.dns_serial, EPOCH_SECONDS + 2);
    assert.equal(parseZoneSerial(zoneText("cluster")), EPOCH_SECONDS + 2);
    assert.equal(parseZoneSerial(zoneText("0.141.10.in-addr.arpa")), EPOCH_SECONDS + 2);
  });

  test("unchanged zones keep file and serial", async () => {
    const callsBefore = fake.calls().length;
    const result = await regenerateDns(t.services, { mode: "changed" });
    assert.deepEqual(result.installed, []);
    assert.equal(result.reloaded, false);
    assert.equal(parseZoneSerial(zoneText("cluster")), EPOCH_SECONDS + 2);
    assert.equal(fake.calls().length, callsBefore);
  });

  test("a changed zone gets a higher serial than the installed files", async () => {
    await t.db.write((tx) => tx.update(cluster).set({ dns_serial: 0 }));
    await t.db.write(async (tx) => {
      const [ipmi] = await tx.select().from(network).where(eq(network.name, "ipmi"));
      const [pdu] = await tx.insert(otherDevice).values({ name: "pdu01" }).returning();
      await tx.insert(ipAddress).values({ network_id: ipmi.id, ipaddress: "10.148.250.1", other_device_id: pdu.id });
    });
    const result = await regenerateDns(t.services, { mode: "changed" });
    assert.deepEqual(result.installed.sort(), [zonePath("250.148.10.in-addr.arpa"), zonePath("ipmi"), t.config.dns.namedConfPath].sort());
    assert.equal(parseZoneSerial(zoneText("ipmi")), EPOCH_SECONDS + 3);
    assert.equal(parseZoneSerial(zoneText("cluster")), EPOCH_SECONDS + 2);
    assert.match(zoneText("ipmi"), /^pdu01 IN A 10\.148\.250\.1$/m);
  });

  test("a rejected zone keeps every previous file", async () => {
    const siteDirectory = join(t.directory, "site-templates");
    mkdirSync(siteDirectory, { recursive: true });
    writeFileSync(join(siteDirectory, "zone.eta"), "$ORIGIN <%= it.name %>.\nthis is not a zone\n");
    const snapshot = new Map(readdirSync(t.config.dns.zoneDirectory).map((name) => [name, readFileSync(join(t.config.dns.zoneDirectory, name), "utf8")]));
    const original = t.services.templates;
    t.services.templates = new Templates(siteDirectory);
    try {
      await assert.rejects(regenerateDns(t.services, { mode: "always" }), (error: unknown) => {
        assert.ok(error instanceof ConfigCheckError);
        assert.match(error.message, /named-checkzone rejected the new .*\.luna\.zone, so the previous file stays in place: /);
        assert.match(error.message, /no TTL specified|unknown RR type|not loaded due to errors/);
        return true;
      });
    } finally {
      t.services.templates = original;
    }
    const now = new Map(readdirSync(t.config.dns.zoneDirectory).map((name) => [name, readFileSync(join(t.config.dns.zoneDirectory, name), "utf8")]));
    assert.deepEqual(now, snapshot);
  });

  test("non-authoritative network becomes a forward zone", async () => {
    await t.db.write((tx) => tx.update(network).set({ non_authoritative: true, nameserver_ip: "10.149.0.53" }).where(eq(network.name, "ib")));
    await regenerateDns(t.services, { mode: "changed" });
    const text = readFileSync(t.config.dns.namedConfPath, "utf8");
    assert.match(text, /zone "ib" IN \{\n    type forward;\n    forward only;\n    forwarders \{ 10\.149\.0\.53; \};\n\};/);
    assert.equal(existsSync(zonePath("ib")), false);
  });

  test("removed network loses its zone file", async () => {
    await t.db.write((tx) => tx.delete(network).where(eq(network.name, "ipmi")));
    const result = await regenerateDns(t.services, { mode: "changed" });
    assert.equal(existsSync(zonePath("ipmi")), false);
    assert.equal(existsSync(zonePath("0.148.10.in-addr.arpa")), false);
    assert.ok(result.installed.includes(zonePath("ipmi")));
    assert.doesNotMatch(readFileSync(t.config.dns.namedConfPath, "utf8"), /"ipmi"/);
  });

  test("name taken twice is left out and reported", async () => {
    await t.db.write(async (tx) => {
      const [clusterNetwork] = await tx.select().from(network).where(eq(network.name, "cluster"));
      const [twin] = await tx.insert(switchDevice).values({ name: "node002" }).returning();
      await tx.insert(ipAddress).values({ network_id: clusterNetwork.id, ipaddress: "10.141.250.2", switch_id: twin.id });
    });
    const result = await regenerateDns(t.services, { mode: "changed" });
    assert.deepEqual(result.problems, [
      'Left out the name of switch "node002" in network "cluster": "node002" is already used by interface BOOTIF of node "node002"',
    ]);
    assert.equal(zoneText("cluster").match(/^node002 /gm)?.length, 1);
  });
});

describe("zone serial arithmetic", () => {
  const cases: { name: string; previous: number; installed: number; now: number; expected: number }[] = [
    { name: "unix time when ahead", previous: 100, installed: 0, now: TEST_EPOCH, expected: EPOCH_SECONDS },
    { name: "previous plus one within a second", previous: EPOCH_SECONDS, installed: 0, now: TEST_EPOCH, expected: EPOCH_SECONDS + 1 },
    { name: "YYYYMMDDnn serial keeps increasing", previous: 2026010101, installed: 0, now: TEST_EPOCH, expected: 2026010102 },
    { name: "installed file above the database", previous: 5, installed: 2026010105, now: TEST_EPOCH, expected: 2026010106 },
    { name: "capped at the 32-bit maximum", previous: 4294967295, installed: 0, now: TEST_EPOCH, expected: 4294967295 },
  ];
  for (const entry of cases) {
    test(entry.name, () => assert.equal(nextSerial(entry.previous, entry.installed, entry.now), entry.expected));
  }

  test("reverse names per /24 and per /64", () => {
    assert.deepEqual(reverseName("10.141.3.7"), { zone: "3.141.10.in-addr.arpa", name: "7" });
    assert.deepEqual(reverseName("fd00:141::a:1"), {
      zone: "0.0.0.0.0.0.0.0.1.4.1.0.0.0.d.f.ip6.arpa",
      name: "1.0.0.0.a.0.0.0.0.0.0.0.0.0.0.0",
    });
  });
});
