import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { and, eq } from "drizzle-orm";
import { ipAddress, network, node, nodeInterface, otherDevice, switchDevice } from "../lib/db/schema/index.ts";
import { buildDhcpModel } from "../lib/dhcp.ts";
import { readAddressBook } from "../lib/dhcp-dns-hosts.ts";
import { regenerateDhcp } from "../lib/dhcp-service.ts";
import { runCommand } from "../lib/hardware/command.ts";
import { ConfigCheckError, locateProgram } from "../lib/service-control.ts";
import { Templates } from "../lib/templates.ts";
import { insertNodes, setBootstrapMacs, writeFakeServiceCommand } from "./dhcp-dns-fixtures.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

type Fake = ReturnType<typeof writeFakeServiceCommand>;

/** An app whose hardware adapter runs the real validators and a fake systemctl. */
async function createDhcpApp(extra = ""): Promise<{ t: TestApp; fake: Fake; cleanup(): Promise<void> }> {
  const fakeDirectory = mkdtempSync(join(tmpdir(), "luna2-fake-"));
  const fake = writeFakeServiceCommand(fakeDirectory);
  const t = await createTestApp({ configExtra: `[SERVICES]\nCOMMAND = ${fake.path}\nCOOLDOWN = 1s\n${extra}` });
  t.hardware.reply = (spec) => runCommand(spec);
  return {
    t,
    fake,
    async cleanup() {
      await t.close();
      rmSync(fakeDirectory, { recursive: true, force: true });
    },
  };
}

/** Adds the objects every render test expects: MACs, 20 more nodes, a switch and another device with addresses. */
async function addFixtureHosts(t: TestApp): Promise<void> {
  await setBootstrapMacs(t.db);
  await insertNodes(t.db, { count: 20, prefix: "extra", firstHost: 100 });
  await t.db.write(async (tx) => {
    await tx.update(node).set({ ipxe_kernel: "alternative" }).where(eq(node.name, "node002"));
    const [cluster] = await tx.select().from(network).where(eq(network.name, "cluster"));
    const [switch01] = await tx.select().from(switchDevice).where(eq(switchDevice.name, "switch01"));
    await tx.update(switchDevice).set({ macaddress: "5c:00:00:00:00:01" }).where(eq(switchDevice.id, switch01.id));
    await tx.insert(ipAddress).values({ network_id: cluster.id, ipaddress: "10.141.250.1", switch_id: switch01.id });
    const [pdu] = await tx.insert(otherDevice).values({ name: "pdu01", macaddress: "5c:00:00:00:00:02" }).returning();
    await tx.insert(ipAddress).values({ network_id: cluster.id, ipaddress: "10.141.250.2", other_device_id: pdu.id });
  });
}

async function runValidator(program: string, args: string[]): Promise<void> {
  await runCommand({ program: locateProgram(program), args, timeoutMs: 30_000 });
}

describe("ISC dhcpd configuration", () => {
  let context: Awaited<ReturnType<typeof createDhcpApp>>;
  let text: string;
  before(async () => {
    context = await createDhcpApp();
    await addFixtureHosts(context.t);
  });
  after(() => context.cleanup());

  test("regeneration installs a file dhcpd -t accepts", async () => {
    const { t, fake } = context;
    const result = await regenerateDhcp(t.services, { mode: "changed" });
    const target = t.config.dhcp.configPath;
    assert.deepEqual(result.installed, [target]);
    assert.equal(result.reloaded, true);
    assert.deepEqual(result.problems, []);
    text = readFileSync(target, "utf8");
    await runValidator("dhcpd", ["-t", "-cf", target]);
    const checks = t.hardware.calls.filter((spec) => spec.program.endsWith("dhcpd"));
    assert.equal(checks.length, 1);
    assert.deepEqual(fake.calls().map((call) => call.slice(1)), [["reload", "isc-dhcp-server"]]);
  });

  test("subnet carries range, router, servers and boot branches", () => {
    assert.match(text, /subnet 10\.141\.0\.0 netmask 255\.255\.0\.0 \{/);
    assert.match(text, /  range 10\.141\.155\.0 10\.141\.165\.0;/);
    assert.match(text, /  option routers 10\.141\.255\.254;/);
    assert.match(text, /  option domain-name "cluster";/);
    assert.match(text, /  next-server 10\.141\.255\.254;/);
    assert.match(text, /if exists user-class and option user-class = "iPXE" \{\n\s+filename "http:\/\/10\.141\.255\.254:7050\/boot";/);
    assert.match(text, /option client-architecture = 00:07 or option client-architecture = 00:09 \{\n\s+filename "luna_ipxe\.efi";/);
    assert.match(text, /option client-architecture = 00:0b \{\n\s+filename "luna_ipxe_arm64\.efi";/);
    assert.match(text, /\} else \{\n\s+filename "luna_undionly\.kpxe";/);
    assert.match(text, /option client-architecture code 93 = unsigned integer 16;/);
  });

  test("networks without DHCP and without controller are absent", () => {
    assert.doesNotMatch(text, /subnet 10\.148\./);
    assert.doesNotMatch(text, /subnet 10\.149\./);
  });

  test("one reservation per known MAC", () => {
    const hosts = [...text.matchAll(/^host (\S+) \{/gm)].map((match) => match[1]);
    assert.equal(hosts.length, 4 + 20 + 2);
    assert.ok(hosts.includes("node001.cluster"));
    assert.ok(hosts.includes("extra00020.cluster"));
    assert.ok(hosts.includes("switch01.cluster"));
    assert.ok(hosts.includes("pdu01.cluster"));
    assert.match(text, /host node001\.cluster \{\n  hardware ethernet aa:bb:cc:dd:ee:01;\n  fixed-address 10\.141\.0\.1;\n  option host-name "node001";\n\}/);
    assert.match(text, /host extra00001\.cluster \{\n  hardware ethernet 02:00:00:00:00:00;\n  fixed-address 10\.141\.0\.100;/);
  });

  test("alternative ipxe_kernel host gets SNP-only files", () => {
    const block = /host node002\.cluster \{[\s\S]*?\n\}/.exec(text)![0];
    assert.match(block, /filename "http:\/\/10\.141\.255\.254:7050\/boot";/);
    assert.match(block, /filename "luna_snponly\.efi";/);
    assert.match(block, /filename "luna_snponly_arm64\.efi";/);
    const plain = /host node003\.cluster \{[\s\S]*?\n\}/.exec(text)![0];
    assert.doesNotMatch(plain, /filename/);
  });

  test("unchanged configuration is neither installed nor reloaded", async () => {
    const { t, fake } = context;
    const result = await regenerateDhcp(t.services, { mode: "changed" });
    assert.deepEqual(result.installed, []);
    assert.equal(result.reloaded, false);
    assert.equal(fake.calls().length, 1);
  });

  test("a rejected file keeps the previous one", async () => {
    const { t, fake } = context;
    const siteDirectory = join(t.directory, "site-templates");
    mkdirSync(siteDirectory, { recursive: true });
    writeFileSync(join(siteDirectory, "dhcpd.conf.eta"), "subnet 10.141.0.0 netmask { broken\n");
    const original = t.services.templates;
    t.services.templates = new Templates(siteDirectory);
    try {
      await assert.rejects(regenerateDhcp(t.services, { mode: "always" }), (error: unknown) => {
        assert.ok(error instanceof ConfigCheckError);
        assert.match(error.message, /rejected the new .*dhcpd\.conf, so the previous file stays in place/);
        assert.match(error.message, /line 1/);
        assert.doesNotMatch(error.message, /Internet Systems Consortium/);
        return true;
      });
    } finally {
      t.services.templates = original;
    }
    assert.equal(readFileSync(t.config.dhcp.configPath, "utf8"), text);
    assert.deepEqual(readdirSync(dirname(t.config.dhcp.configPath)), ["dhcpd.conf"]);
    assert.equal(fake.calls().length, 1);
  });

  test("duplicate MAC of a switch is left out and reported", async () => {
    const { t } = context;
    await t.db.write((tx) => tx.update(switchDevice).set({ macaddress: "aa:bb:cc:dd:ee:01" }).where(eq(switchDevice.name, "switch01")));
    const result = await regenerateDhcp(t.services, { mode: "changed" });
    assert.deepEqual(result.problems, [
      'Left out the DHCP reservation of switch "switch01": MAC address aa:bb:cc:dd:ee:01 is already reserved for interface BOOTIF of node "node001"',
    ]);
    const installed = readFileSync(t.config.dhcp.configPath, "utf8");
    assert.equal(installed.match(/aa:bb:cc:dd:ee:01/g)?.length, 1);
    assert.doesNotMatch(installed, /host switch01\.cluster/);
  });
});

describe("Kea configuration", () => {
  let context: Awaited<ReturnType<typeof createDhcpApp>>;
  let config: { Dhcp4: Record<string, any> };
  before(async () => {
    context = await createDhcpApp("[DHCP]\nSERVER = kea\nCONFIG_PATH = kea/kea-dhcp4.conf\n[SERVICES]\nDHCP = kea-dhcp4-server\n");
    await addFixtureHosts(context.t);
  });
  after(() => context.cleanup());

  test("regeneration installs a file kea-dhcp4 -t accepts", async () => {
    const { t, fake } = context;
    const result = await regenerateDhcp(t.services, { mode: "changed" });
    assert.deepEqual(result.installed, [join(t.directory, "kea", "kea-dhcp4.conf")]);
    await runValidator("kea-dhcp4", ["-t", t.config.dhcp.configPath]);
    config = JSON.parse(readFileSync(t.config.dhcp.configPath, "utf8"));
    assert.deepEqual(fake.calls().map((call) => call.slice(1)), [["reload", "kea-dhcp4-server"]]);
  });

  test("subnet id is the network id", async () => {
    const [cluster] = await context.t.db.orm.select().from(network).where(eq(network.name, "cluster"));
    const subnets = config.Dhcp4.subnet4;
    assert.equal(subnets.length, 1);
    assert.equal(subnets[0].id, cluster.id);
    assert.equal(subnets[0].subnet, "10.141.0.0/16");
    assert.deepEqual(subnets[0].pools, [{ pool: "10.141.155.0 - 10.141.165.0" }]);
    assert.equal(subnets[0]["next-server"], "10.141.255.254");
  });

  test("reservations and classes cover iPXE and firmware", () => {
    const subnet = config.Dhcp4.subnet4[0];
    assert.equal(subnet.reservations.length, 26);
    assert.deepEqual(subnet.reservations.find((entry: any) => entry.hostname === "node001"), { "hw-address": "aa:bb:cc:dd:ee:01", "ip-address": "10.141.0.1", hostname: "node001" });
    const node002 = subnet.reservations.find((entry: any) => entry.hostname === "node002");
    assert.deepEqual(node002["client-classes"], ["luna-alternative"]);

    const classes = new Map<string, any>(config.Dhcp4["client-classes"].map((entry: any) => [entry.name, entry]));
    const ipxe = classes.get(`luna-ipxe-${subnet.id}`);
    assert.equal(ipxe.test, "option[77].hex == 'iPXE'");
    assert.equal(ipxe["boot-file-name"], "http://10.141.255.254:7050/boot");
    assert.equal(classes.get("luna-efi-x64")["boot-file-name"], "luna_ipxe.efi");
    assert.equal(classes.get("luna-efi-x64-alternative")["boot-file-name"], "luna_snponly.efi");
    assert.equal(classes.get("luna-efi-arm64")["boot-file-name"], "luna_ipxe_arm64.efi");
    assert.equal(classes.get("luna-efi-arm64-alternative")["boot-file-name"], "luna_snponly_arm64.efi");
    assert.equal(classes.get("luna-bios")["boot-file-name"], "luna_undionly.kpxe");
    assert.ok(subnet["require-client-classes"].includes(`luna-ipxe-${subnet.id}`));
    assert.equal(config.Dhcp4["option-def"], undefined, "option 93 is built into Kea and must not be redefined");
  });

  test("duplicate MAC is left out so Kea accepts the file", async () => {
    const { t } = context;
    await t.db.write((tx) => tx.update(otherDevice).set({ macaddress: "aa:bb:cc:dd:ee:02" }).where(eq(otherDevice.name, "pdu01")));
    const result = await regenerateDhcp(t.services, { mode: "changed" });
    assert.equal(result.problems.length, 1);
    assert.match(result.problems[0], /other device "pdu01": MAC address aa:bb:cc:dd:ee:02 is already reserved for interface BOOTIF of node "node002"/);
    const written = JSON.parse(readFileSync(t.config.dhcp.configPath, "utf8"));
    assert.equal(written.Dhcp4.subnet4[0].reservations.length, 25);
  });

  test("removing a network keeps the other subnet ids", async () => {
    const { t } = context;
    const added = await t.db.write(async (tx) => {
      const rows = [];
      for (const [name, prefix] of [["net-a", "10.150"], ["net-b", "10.151"]]) {
        const [row] = await tx.insert(network).values({
          name,
          network: `${prefix}.0.0`,
          subnet: 16,
          dhcp: true,
          dhcp_range_begin: `${prefix}.1.0`,
          dhcp_range_end: `${prefix}.1.200`,
        }).returning();
        rows.push(row);
      }
      return rows;
    });
    await regenerateDhcp(t.services, { mode: "changed" });
    const before = JSON.parse(readFileSync(t.config.dhcp.configPath, "utf8")).Dhcp4.subnet4;
    assert.deepEqual(before.map((subnet: any) => subnet.id), [1, added[0].id, added[1].id]);

    await t.db.write((tx) => tx.delete(network).where(eq(network.name, "net-a")));
    const [netC] = await t.db.write((tx) =>
      tx.insert(network).values({ name: "net-c", network: "10.152.0.0", subnet: 16, dhcp: true, dhcp_range_begin: "10.152.1.0", dhcp_range_end: "10.152.1.9" }).returning());
    await regenerateDhcp(t.services, { mode: "changed" });
    const afterwards = JSON.parse(readFileSync(t.config.dhcp.configPath, "utf8")).Dhcp4.subnet4;
    const ids = new Map(afterwards.map((subnet: any) => [subnet.subnet, subnet.id]));
    assert.equal(ids.get("10.141.0.0/16"), 1);
    assert.equal(ids.get("10.151.0.0/16"), added[1].id);
    assert.equal(ids.get("10.152.0.0/16"), netC.id);
    assert.ok(netC.id > added[1].id, "AUTOINCREMENT never reuses the removed network's id");
    assert.equal(ids.get("10.150.0.0/16"), undefined);
  });
});

describe("shared networks", () => {
  for (const server of ["isc", "kea"] as const) {
    test(`${server} shares the cluster segment with the BMC network`, async () => {
      const context = await createDhcpApp(`[DHCP]\nSERVER = ${server}\n`);
      try {
        const { t } = context;
        await setBootstrapMacs(t.db);
        await t.db.write((tx) =>
          tx.update(network).set({ dhcp: true, dhcp_range_begin: "10.148.200.0", dhcp_range_end: "10.148.200.200", shared: "cluster" })
            .where(eq(network.name, "ipmi")));
        const result = await regenerateDhcp(t.services, { mode: "changed" });
        assert.equal(result.reloaded, true);
        const text = readFileSync(t.config.dhcp.configPath, "utf8");
        if (server === "isc") {
          assert.match(text, /shared-network "cluster-ipmi" \{\n  subnet 10\.141\.0\.0 netmask 255\.255\.0\.0 \{/);
          assert.match(text, /    pool \{\n      deny members of "luna-udhcp";\n      range 10\.141\.155\.0 10\.141\.165\.0;/);
          assert.match(text, /    pool \{\n      allow members of "luna-udhcp";\n      range 10\.148\.200\.0 10\.148\.200\.200;/);
          assert.match(text, /host node001\.ipmi \{\n  hardware ethernet aa:bb:cc:dd:ff:01;\n  fixed-address 10\.148\.0\.1;/);
        } else {
          const config = JSON.parse(text).Dhcp4;
          assert.deepEqual(config.subnet4, []);
          assert.equal(config["shared-networks"][0].name, "cluster-ipmi");
          const [carrier, member] = config["shared-networks"][0].subnet4;
          assert.deepEqual(carrier.pools, [{ pool: "10.141.155.0 - 10.141.165.0", "client-class": "luna-not-udhcp" }]);
          assert.deepEqual(member.pools, [{ pool: "10.148.200.0 - 10.148.200.200", "client-class": "luna-udhcp" }]);
          assert.equal(member.reservations.length, 4);
        }
      } finally {
        await context.cleanup();
      }
    });
  }
});

describe("DHCP model guards", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    await setBootstrapMacs(t.db);
  });
  after(() => t.close());

  test("duplicate address never reaches the model", async () => {
    const book = await readAddressBook(t.db.orm);
    const node001 = book.hosts.find((host) => host.owner === "node001" && host.interfaceName === "BOOTIF")!;
    book.hosts.push({ ...node001, kind: "otherdev", owner: "storage01", interfaceName: null, label: "storage01", macaddress: "5c:00:00:00:00:09" });
    const model = buildDhcpModel(book, t.config);
    assert.equal(model.hosts.filter((host) => host.ipaddress === "10.141.0.1").length, 1);
    assert.deepEqual(model.problems, [
      'Left out the DHCP reservation of other device "storage01": address 10.141.0.1 is already reserved for interface BOOTIF of node "node001"',
    ]);
  });

  test("address outside its network is left out", async () => {
    await t.db.write(async (tx) => {
      const [row] = await tx.select({ id: nodeInterface.id }).from(nodeInterface).innerJoin(node, eq(node.id, nodeInterface.node_id))
        .where(and(eq(node.name, "node004"), eq(nodeInterface.interface, "BOOTIF")));
      await tx.update(ipAddress).set({ ipaddress: "10.200.0.4" }).where(eq(ipAddress.node_interface_id, row.id));
    });
    const model = buildDhcpModel(await readAddressBook(t.db.orm), t.config);
    assert.ok(model.problems.some((problem) => /address 10\.200\.0\.4 is outside network "cluster"/.test(problem)), model.problems.join("\n"));
    assert.equal(model.hosts.some((host) => host.ipaddress === "10.200.0.4"), false);
  });

  test("invalid host name falls back to the address", async () => {
    await t.db.write(async (tx) => {
      const [cluster] = await tx.select().from(network).where(eq(network.name, "cluster"));
      const [group] = await tx.select({ id: node.group_id }).from(node).where(eq(node.name, "node001"));
      const [bad] = await tx.insert(node).values({ name: "bad-", group_id: group.id }).returning();
      const [bootif] = await tx.insert(nodeInterface).values({ node_id: bad.id, interface: "BOOTIF", macaddress: "5c:00:00:00:00:0b" }).returning();
      await tx.insert(ipAddress).values({ network_id: cluster.id, ipaddress: "10.141.0.9", node_interface_id: bootif.id });
    });
    const model = buildDhcpModel(await readAddressBook(t.db.orm), t.config);
    const host = model.hosts.find((entry) => entry.macaddress === "5c:00:00:00:00:0b")!;
    assert.equal(host.name, "host-10-141-0-9.cluster");
    assert.equal(host.hostname, null);
    assert.ok(model.problems.includes('Left out the name of interface BOOTIF of node "bad-" in network "cluster": "bad-" is not a valid host name'), model.problems.join("\n"));
  });

  test("controller network without DHCP gets an empty declaration", async () => {
    await t.db.write((tx) => tx.update(network).set({ dhcp: false }).where(eq(network.name, "cluster")));
    const model = buildDhcpModel(await readAddressBook(t.db.orm), t.config);
    assert.deepEqual(model.subnets.map((subnet) => [subnet.name, subnet.dhcp, subnet.hosts.length]), [["cluster", false, 0]]);
    const text = t.services.templates.render("dhcpd.conf", model);
    assert.match(text, /subnet 10\.141\.0\.0 netmask 255\.255\.0\.0 \{\n\}/);
    assert.equal(existsSync(t.config.dhcp.configPath), false);
  });
});
