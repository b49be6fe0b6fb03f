import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { and, eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { readFileSync } from "node:fs";
import { flushServiceRegeneration } from "../lib/dhcp-dns-regeneration.ts";
import { cluster, controller, ipAddress, job, network, node, nodeGroup, nodeInterface, osimage, osimageTag, switchDevice } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

const KERNEL = "compute-image-1-vmlinuz-6.1";
const INITRD = "compute-image-1-initramfs-6.1";
const ARCHIVE = "compute-image-1.tar.zst";

/** Builds the `c.env` that @hono/node-server passes with a request from `remote` to `local`. */
function socketEnv(remote: string | null, local: string | null = "10.141.255.254") {
  return { incoming: { socket: { remoteAddress: remote ?? undefined, localAddress: local ?? undefined } } };
}

function boot(t: TestApp, path: string, env: object = socketEnv("10.141.0.99"), headers: Record<string, string> = {}) {
  return t.app.request(path, { headers }, env);
}

async function packImage(t: TestApp): Promise<void> {
  await t.db.write((tx) => tx.update(osimage).set({ kernelfile: KERNEL, initrdfile: INITRD, imagefile: ARCHIVE }).where(eq(osimage.name, "compute-image")));
}

async function nodeId(t: TestApp, name: string): Promise<number> {
  const [row] = await t.db.orm.select({ id: node.id }).from(node).where(eq(node.name, name));
  assert.ok(row, `node ${name} exists`);
  return row.id;
}

async function setMac(t: TestApp, name: string, interfaceName: string, mac: string | null): Promise<void> {
  const id = await nodeId(t, name);
  await t.db.write((tx) => tx.update(nodeInterface).set({ macaddress: mac }).where(and(eq(nodeInterface.node_id, id), eq(nodeInterface.interface, interfaceName))));
}

/** MAC addresses stored per node and interface, for assertions on the stored state. */
async function storedMacs(t: TestApp): Promise<Map<string, string>> {
  const rows = await t.db.orm
    .select({ node: node.name, interface: nodeInterface.interface, mac: nodeInterface.macaddress })
    .from(nodeInterface)
    .innerJoin(node, eq(node.id, nodeInterface.node_id));
  return new Map(rows.filter((row) => row.mac !== null).map((row) => [row.mac!, `${row.node}/${row.interface}`]));
}

async function setCluster(t: TestApp, values: Partial<typeof cluster.$inferInsert>): Promise<void> {
  await t.db.write((tx) => tx.update(cluster).set(values).where(eq(cluster.id, 1)));
}

function imgargs(script: string): string {
  const line = script.split("\n").find((item) => item.startsWith("imgargs kernel "));
  assert.ok(line, "script has an imgargs line");
  return line;
}

function kernelParameter(script: string, name: string): string | undefined {
  return imgargs(script).split(" ").find((item) => item.startsWith(`${name}=`))?.slice(name.length + 1);
}

describe("boot script URLs follow the network of the request", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    // A second provisioning network in which the controller has its own address.
    await t.db.write(async (tx) => {
      const [net] = await tx.insert(network).values({ name: "rack2", network: "10.150.0.0", subnet: 16 }).returning();
      const [beacon] = await tx.select().from(controller).where(eq(controller.beacon, true));
      await tx.insert(ipAddress).values({ network_id: net.id, ipaddress: "10.150.255.254", controller_id: beacon.id });
    });
  });
  after(() => t.close());

  const cases: { name: string; env: object; host?: string; expected: string }[] = [
    { name: "local address in cluster", env: socketEnv("10.141.0.7", "10.141.255.254"), expected: "http://10.141.255.254:7050" },
    { name: "local address in rack2", env: socketEnv("10.150.0.7", "10.150.255.254"), expected: "http://10.150.255.254:7050" },
    { name: "client address in rack2 without local address", env: socketEnv("10.150.0.7", null), expected: "http://10.150.255.254:7050" },
    { name: "local address wins over client address", env: socketEnv("10.150.0.7", "10.141.255.254"), expected: "http://10.141.255.254:7050" },
    { name: "IPv4-mapped addresses", env: socketEnv("::ffff:10.150.0.7", "::ffff:10.150.255.254"), expected: "http://10.150.255.254:7050" },
    { name: "no network matches: beacon", env: socketEnv("172.16.0.5", "172.16.0.1"), expected: "http://10.141.255.254:7050" },
    { name: "Deno.serve info shape", env: { remoteAddr: { hostname: "10.150.0.7", port: 5000, transport: "tcp" } }, expected: "http://10.150.255.254:7050" },
    { name: "Deno.serve shape from outside networks", env: { remoteAddr: { hostname: "172.16.0.5", port: 5000, transport: "tcp" } }, expected: "http://10.141.255.254:7050" },
    { name: "no connection info: beacon", env: {}, expected: "http://10.141.255.254:7050" },
    { name: "loopback client uses Host header", env: socketEnv("127.0.0.1", "127.0.0.1"), host: "10.0.2.2:41234", expected: "http://10.0.2.2:41234" },
    { name: "loopback IPv6 client uses Host header", env: socketEnv("::1", "::1"), host: "[::1]:41234", expected: "http://[::1]:41234" },
    { name: "loopback Host header without port", env: socketEnv("127.0.0.1", "127.0.0.1"), host: "boot.example", expected: "http://boot.example:80" },
    { name: "loopback with an unsafe Host header: beacon", env: socketEnv("127.0.0.1", "127.0.0.1"), host: "x${y}||shell", expected: "http://10.141.255.254:7050" },
    { name: "Host header ignored off loopback", env: socketEnv("10.150.0.7", "10.150.255.254"), host: "10.0.2.2:41234", expected: "http://10.150.255.254:7050" },
  ];
  for (const item of cases) {
    test(item.name, async () => {
      const response = await boot(t, "/boot", item.env, item.host ? { host: item.host } : {});
      assert.equal(response.status, 200);
      const script = await response.text();
      assert.ok(script.startsWith("#!ipxe\n"));
      assert.match(script, new RegExp(`set luna-url ${item.expected.replace(/[.[\]]/g, "\\$&")}/boot/search/mac/\\$\\{netX/mac:hexhyp\\}`));
      assert.ok(!script.includes("127.0.0.1"), "no loopback URL reaches a script");
    });
  }
});

describe("listen address stands in for an unknown local address", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    // The test config listens on 127.0.0.1; a daemon bound to 10.150.255.254 accepts only there.
    t.config.api.listenHost = "10.150.255.254";
    await t.db.write(async (tx) => {
      const [net] = await tx.insert(network).values({ name: "rack2", network: "10.150.0.0", subnet: 16 }).returning();
      const [beacon] = await tx.select().from(controller).where(eq(controller.beacon, true));
      await tx.insert(ipAddress).values({ network_id: net.id, ipaddress: "10.150.255.254", controller_id: beacon.id });
    });
  });
  after(() => t.close());

  test("client outside every network", async () => {
    const response = await boot(t, "/boot", { remoteAddr: { hostname: "172.16.0.5", port: 5000, transport: "tcp" } });
    assert.match(await response.text(), /^set luna-url http:\/\/10\.150\.255\.254:7050\/boot\/search/m);
  });
});

describe("GET /boot, /boot/short and /boot/disk", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    await setMac(t, "node002", "BOOTIF", "aa:bb:cc:dd:ee:02");
  });
  after(() => t.close());

  test("menu lists groups and nodes without MAC", async () => {
    const response = await boot(t, "/boot");
    assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    const script = await response.text();
    assert.match(script, /^item compute-group compute-group$/m);
    for (const name of ["node001", "node003", "node004"]) assert.match(script, new RegExp(`^item ${name} ${name}$`, "m"));
    assert.doesNotMatch(script, /^item node002 /m);
    assert.match(script, /^choose --timeout 10000 --default ask luna-target && goto \$\{luna-target\} \|\| goto ask$/m);
  });

  test("menu fetches retry four times, then return to the menu", async () => {
    const script = await (await boot(t, "/boot")).text();
    assert.match(script, /^chain --replace --autofree \$\{luna-url\} \|\| goto fetch-failed$/m);
    assert.match(script, /^iseq \$\{luna-tries\} xxxx && goto start \|\| set luna-tries \$\{luna-tries\}x$/m);
    assert.match(script, /^sleep 3$/m);
  });

  test("menu avoids commands the 2019 iPXE lacks", async () => {
    for (const path of ["/boot", "/boot/short", "/boot/disk"]) {
      const script = await (await boot(t, path)).text();
      assert.doesNotMatch(script, /ifconf|poweroff|params|--timeout \d+ [^-]*ifconf/, path);
    }
  });

  test("short menu has no group or node list", async () => {
    const response = await boot(t, "/boot/short");
    assert.equal(response.status, 200);
    const script = await response.text();
    assert.ok(script.startsWith("#!ipxe\n"));
    assert.doesNotMatch(script, /:group|:list|compute-group|node001/);
    assert.match(script, /boot\/search\/mac\/\$\{netX\/mac:hexhyp\}/);
  });

  test("disk script exits on EFI and sanboots on BIOS", async () => {
    const response = await boot(t, "/boot/disk");
    assert.equal(response.status, 200);
    const script = await response.text();
    assert.ok(script.startsWith("#!ipxe\n"));
    assert.match(script, /^iseq \$\{platform\} efi && goto efi \|\| goto bios$/m);
    assert.match(script, /^:efi\nexit$/m);
    assert.match(script, /^:bios\nsanboot --no-describe --drive 0x80 \|\| goto failed$/m);
  });

  test("menu lists at most 100 free nodes", async () => {
    await t.db.write(async (tx) => {
      const [group] = await tx.select().from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
      for (let index = 100; index < 210; index++) {
        const [created] = await tx.insert(node).values({ name: `bulk${index}`, group_id: group.id }).returning();
        await tx.insert(nodeInterface).values({ node_id: created.id, interface: "BOOTIF" });
      }
    });
    const cached = await (await boot(t, "/boot")).text();
    assert.doesNotMatch(cached, /bulk100/, "the menu lists are reused for 5 s");
    t.clock.advance(5000);
    const script = await (await boot(t, "/boot")).text();
    assert.equal(script.split("\n").filter((line) => /^item (bulk|node)\d+ /.test(line)).length, 100);
    assert.match(script, /^item --gap Only the first 100 nodes are listed/m);
  });
});

describe("GET /boot/search/mac/{mac} for a known MAC address", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({ configExtra: "[WEBSERVER]\nPORT = 7051" });
    await packImage(t);
    await setMac(t, "node002", "BOOTIF", "aa:bb:cc:dd:ee:02");
  });
  afterEach(() => t.close());

  const formats = [
    ["colons", "aa:bb:cc:dd:ee:02"],
    ["dashes upper case", "AA-BB-CC-DD-EE-02"],
    ["percent-encoded colons", "aa%3Abb%3Acc%3Add%3Aee%3A02"],
    ["percent-encoded dashes", "aa%2Dbb%2Dcc%2Ddd%2Dee%2D02"],
    ["still encoded after routing", "aa%253Abb%253Acc%253Add%253Aee%253A02"],
  ];
  for (const [name, mac] of formats) {
    test(`MAC with ${name}`, async () => {
      const response = await boot(t, `/boot/search/mac/${mac}`);
      assert.equal(response.status, 200);
      const script = await response.text();
      assert.ok(script.startsWith("#!ipxe\n"));
      assert.equal(kernelParameter(script, "luna.mac"), "aa:bb:cc:dd:ee:02");
      assert.equal(kernelParameter(script, "luna.node"), "node002");
    });
  }

  test("script carries kernel, initrd, address and token", async () => {
    const script = await (await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:02")).text();
    assert.match(script, new RegExp(`^imgfetch --name kernel http://10\\.141\\.255\\.254:7051/files/${KERNEL} && goto initrd`, "m"));
    assert.match(script, new RegExp(`^imgfetch --name initrd\\.img http://10\\.141\\.255\\.254:7051/files/${INITRD} && goto boot`, "m"));
    assert.equal(kernelParameter(script, "initrd"), "initrd.img");
    assert.equal(kernelParameter(script, "luna.ip"), "10.141.0.2/16");
    assert.equal(kernelParameter(script, "luna.gw"), "10.141.255.254");
    assert.equal(kernelParameter(script, "luna.bootif"), "BOOTIF");
    assert.equal(kernelParameter(script, "luna.url"), "http://10.141.255.254:7050");
    assert.equal(kernelParameter(script, "luna.install"), "http://10.141.255.254:7050/boot/install/node002");
    assert.match(imgargs(script), / net\.ifnames=0 biosdevname=0$/);
    const claims = decodeJwt(kernelParameter(script, "luna.token")!);
    assert.equal(claims.node, "node002");
    assert.equal(claims.scope, "provision");
    assert.equal(typeof claims.exp, "number");
    assert.ok(claims.exp! > t.clock.now() / 1000);
    assert.match(script, /^imgexec kernel \|\| goto failed$/m);
    assert.match(script, /^iseq \$\{luna-tries\} xxxx && goto failed \|\| set luna-tries \$\{luna-tries\}x$/m);
  });

  const optionCases: { name: string; setup: (t: TestApp) => Promise<void>; expected: RegExp }[] = [
    {
      name: "group kernel options win over the image's",
      setup: async (t) => void (await t.db.write((tx) => tx.update(nodeGroup).set({ kerneloptions: "quiet" }))),
      expected: / luna\.service=0 quiet$/,
    },
    {
      name: "node kernel options sent as base64 are decoded",
      setup: async (t) => {
        const id = await nodeId(t, "node002");
        await t.db.write((tx) => tx.update(node).set({ kerneloptions: btoa("console=ttyS0,115200\nrd.debug") }).where(eq(node.id, id)));
      },
      expected: / luna\.service=0 console=ttyS0,115200 rd\.debug$/,
    },
  ];
  for (const item of optionCases) {
    test(item.name, async () => {
      await item.setup(t);
      const script = await (await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:02")).text();
      assert.match(imgargs(script), item.expected);
    });
  }

  test("active tag supplies kernel and initrd", async () => {
    await t.db.write(async (tx) => {
      const [image] = await tx.select().from(osimage).where(eq(osimage.name, "compute-image"));
      const [tag] = await tx.insert(osimageTag).values({ osimage_id: image.id, name: "old", kernelfile: "old-vmlinuz", initrdfile: "old-initramfs" }).returning();
      await tx.update(osimage).set({ tag_id: tag.id }).where(eq(osimage.id, image.id));
    });
    const script = await (await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:02")).text();
    assert.match(script, /\/files\/old-vmlinuz /);
    assert.match(script, /\/files\/old-initramfs /);
  });

  test("node without netboot gets the disk script", async () => {
    const id = await nodeId(t, "node002");
    await t.db.write((tx) => tx.update(node).set({ netboot: false }).where(eq(node.id, id)));
    const response = await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:02");
    assert.equal(response.status, 200);
    assert.match(await response.text(), /sanboot --no-describe --drive 0x80/);
  });

  test("DHCP provisioning network boots with luna.ip=dhcp", async () => {
    await t.db.write((tx) => tx.update(network).set({ dhcp_nodes_in_pool: true }).where(eq(network.name, "cluster")));
    const script = await (await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:02")).text();
    assert.equal(kernelParameter(script, "luna.ip"), "dhcp");
    assert.equal(kernelParameter(script, "luna.bootproto"), "dhcp");
  });

  const failures: { name: string; setup: (t: TestApp) => Promise<void>; status: number; message: RegExp }[] = [
    {
      name: "image not packed",
      setup: async (t) => void (await t.db.write((tx) => tx.update(osimage).set({ kernelfile: null }))),
      status: 404,
      message: /^echo OS image "compute-image" of node "node002" has no kernelfile: pack the OS image$/m,
    },
    {
      name: "no initrd",
      setup: async (t) => void (await t.db.write((tx) => tx.update(osimage).set({ initrdfile: null }))),
      status: 404,
      message: /has no initrdfile/,
    },
    {
      name: "no OS image",
      setup: async (t) => void (await t.db.write((tx) => tx.update(nodeGroup).set({ osimage_id: null }))),
      status: 404,
      message: /^echo Node "node002" has no OS image: set osimage on the node or on group "compute-group"$/m,
    },
    {
      name: "packing pauses booting",
      setup: (t) => t.db.write((tx) => tx.insert(job).values({ request_id: "r1", kind: "pack", object: "compute-image", state: "running", created: 0, updated: 0 }).then(() => undefined)),
      status: 503,
      message: /paused while OS image "compute-image" is being packed/,
    },
    {
      name: "provisioning interface without address",
      setup: async (t) => {
        const id = await nodeId(t, "node002");
        await t.db.write((tx) => tx.update(node).set({ provision_interface: "eth9" }).where(eq(node.id, id)));
      },
      status: 404,
      message: /^echo Node "node002" has no address on its provisioning interface eth9: add the interface with a network$/m,
    },
  ];
  for (const item of failures) {
    test(`fails with ${item.status}: ${item.name}`, async () => {
      await item.setup(t);
      const response = await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:02");
      assert.equal(response.status, item.status);
      const script = await response.text();
      assert.ok(script.startsWith("#!ipxe\n"));
      assert.match(script, item.message);
      assert.match(script, /^chain --replace --autofree http:\/\/10\.141\.255\.254:7050\/boot \|\| goto error$/m);
    });
  }

  test("packing does not pause with packing_bootpause off", async () => {
    await setCluster(t, { packing_bootpause: false });
    await t.db.write((tx) => tx.insert(job).values({ request_id: "r1", kind: "pack", object: "compute-image", state: "queued", created: 0, updated: 0 }));
    assert.equal((await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:02")).status, 200);
  });
});

describe("GET /boot/search/mac/{mac} for an unknown MAC address", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
    await packImage(t);
  });
  afterEach(() => t.close());

  test("404 script without discovery", async () => {
    const response = await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:01");
    assert.equal(response.status, 404);
    const script = await response.text();
    assert.ok(script.startsWith("#!ipxe\n"));
    assert.match(script, /^echo No config or autodetect available for node with MAC address aa:bb:cc:dd:ee:01$/m);
    assert.match(script, /^chain --replace --autofree http:\/\/10\.141\.255\.254:7050\/boot \|\| goto error$/m);
    assert.equal((await storedMacs(t)).size, 0);
  });

  const invalidMacs = ["zz:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee", "aabbccddee01", "aa:bb-cc:dd:ee:01x"];
  for (const mac of invalidMacs) {
    test(`400 script for MAC "${mac}"`, async () => {
      const response = await boot(t, `/boot/search/mac/${mac}`);
      assert.equal(response.status, 400);
      const script = await response.text();
      assert.ok(script.startsWith("#!ipxe\n"));
      assert.match(script, /^echo Invalid request: MAC address ".*" is invalid/m);
    });
  }

  test("next node takes MACs in name order", async () => {
    await setCluster(t, { nextnode_discover: true, createnode_ondemand: false });
    await setMac(t, "node002", "BOOTIF", "aa:bb:cc:dd:ee:02");
    const expected = [["aa:bb:cc:dd:ee:11", "node001"], ["AA-BB-CC-DD-EE-13", "node003"], ["aa:bb:cc:dd:ee:14", "node004"]];
    for (const [mac, name] of expected) {
      const response = await boot(t, `/boot/search/mac/${mac}`);
      assert.equal(response.status, 200, mac);
      assert.equal(kernelParameter(await response.text(), "luna.node"), name);
    }
    const macs = await storedMacs(t);
    assert.equal(macs.get("aa:bb:cc:dd:ee:11"), "node001/BOOTIF");
    assert.equal(macs.get("aa:bb:cc:dd:ee:13"), "node003/BOOTIF");
    assert.equal(macs.get("aa:bb:cc:dd:ee:14"), "node004/BOOTIF");
    assert.equal(macs.size, 4, "only provisioning interfaces got a MAC");

    const full = await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:15");
    assert.equal(full.status, 404, "no free node and no on-demand creation");
    assert.equal((await storedMacs(t)).size, 4);
  });

  test("discovery regenerates the DHCP configuration", async () => {
    await setCluster(t, { nextnode_discover: true });
    assert.equal((await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:61")).status, 200);
    await flushServiceRegeneration(t.services);
    assert.match(readFileSync(t.config.dhcp.configPath, "utf8"), /aa:bb:cc:dd:ee:61/);
  });

  test("repeated request gets the same node", async () => {
    await setCluster(t, { nextnode_discover: true });
    const first = await (await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:21")).text();
    const second = await (await boot(t, "/boot/search/mac/aa-bb-cc-dd-ee-21")).text();
    assert.equal(kernelParameter(first, "luna.node"), "node001");
    assert.equal(kernelParameter(second, "luna.node"), "node001");
    assert.equal((await storedMacs(t)).size, 1);
  });

  test("on-demand creation continues the node names", async () => {
    await setCluster(t, { nextnode_discover: true, createnode_ondemand: true });
    for (const [index, name] of ["node001", "node002", "node003", "node004"].entries()) await setMac(t, name, "BOOTIF", `aa:bb:cc:dd:ee:0${index}`);
    const response = await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:31");
    assert.equal(response.status, 200);
    const script = await response.text();
    assert.equal(kernelParameter(script, "luna.node"), "node005");
    assert.equal(kernelParameter(script, "luna.ip"), "10.141.0.5/16");
    const [created] = await t.db.orm
      .select({ group: nodeGroup.name })
      .from(node)
      .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
      .where(eq(node.name, "node005"));
    assert.equal(created.group, "compute-group");
    assert.equal((await storedMacs(t)).get("aa:bb:cc:dd:ee:31"), "node005/BOOTIF");
  });

  test("on-demand creation names the node after the MAC", async () => {
    await setCluster(t, { nextnode_discover: true, createnode_ondemand: true, createnode_macashost: true });
    for (const [index, name] of ["node001", "node002", "node003", "node004"].entries()) await setMac(t, name, "BOOTIF", `aa:bb:cc:dd:ee:0${index}`);
    const script = await (await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:32")).text();
    assert.equal(kernelParameter(script, "luna.node"), "aabbccddee32");
    assert.equal((await storedMacs(t)).get("aa:bb:cc:dd:ee:32"), "aabbccddee32/BOOTIF");
  });

  test("on-demand creation is off without nextnode_discover", async () => {
    await setCluster(t, { nextnode_discover: false, createnode_ondemand: true });
    assert.equal((await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:33")).status, 404);
    assert.equal((await t.db.orm.select().from(node)).length, 4);
  });

  test("switch port finds the node before next-node discovery", async () => {
    await setCluster(t, { nextnode_discover: false });
    await t.db.write(async (tx) => {
      const [switchRow] = await tx.select().from(switchDevice).where(eq(switchDevice.name, "switch01"));
      const [net] = await tx.select().from(network).where(eq(network.name, "cluster"));
      await tx.insert(ipAddress).values({ network_id: net.id, ipaddress: "10.141.250.1", switch_id: switchRow.id });
      await tx.update(node).set({ switch_id: switchRow.id, switchport: "swp5" }).where(eq(node.name, "node003"));
    });
    // snmpwalk output of a switch that learned 52:54:00:00:00:09 (82.84.0.0.0.9) on bridge port 5, ifIndex 1005, ifName swp5.
    const walks: Record<string, string> = {
      ".1.3.6.1.2.1.17.7.1.2.2.1.2": ".1.3.6.1.2.1.17.7.1.2.2.1.2.1.82.84.0.0.0.9 5\n.1.3.6.1.2.1.17.7.1.2.2.1.2.1.82.84.0.0.0.10 7\n",
      ".1.3.6.1.2.1.17.1.4.1.2.5": ".1.3.6.1.2.1.17.1.4.1.2.5 1005\n",
      ".1.3.6.1.2.1.31.1.1.1.1.1005": '.1.3.6.1.2.1.31.1.1.1.1.1005 "swp5"\n',
    };
    t.hardware.reply = (spec) => Promise.resolve({ exitCode: 0, stdout: walks[spec.args.at(-1)!] ?? "", stderr: "", durationMs: 1 });

    const response = await boot(t, "/boot/search/mac/52-54-00-00-00-09");
    assert.equal(response.status, 200);
    assert.equal(kernelParameter(await response.text(), "luna.node"), "node003");
    assert.equal((await storedMacs(t)).get("52:54:00:00:00:09"), "node003/BOOTIF");
    assert.ok(t.hardware.calls.every((call) => call.program === "snmpwalk" && call.args.includes("10.141.250.1")));

    const elsewhere = await boot(t, "/boot/search/mac/52-54-00-00-00-0a");
    assert.equal(elsewhere.status, 404, "port 7 has no node and next-node discovery is off");
  });

  test("group provisioning interface receives the MAC", async () => {
    await setCluster(t, { nextnode_discover: true });
    await t.db.write((tx) => tx.update(nodeGroup).set({ provision_interface: "BMC" }));
    const script = await (await boot(t, "/boot/search/mac/aa:bb:cc:dd:ee:34")).text();
    assert.equal(kernelParameter(script, "luna.bootif"), "BMC");
    assert.equal(kernelParameter(script, "luna.ip"), "10.148.0.1/16");
    assert.equal((await storedMacs(t)).get("aa:bb:cc:dd:ee:34"), "node001/BMC");
  });
});

describe("GET /boot/manual/group and /boot/manual/hostname", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
    await packImage(t);
  });
  afterEach(() => t.close());

  test("group route takes the first free node", async () => {
    await setMac(t, "node001", "BOOTIF", "aa:bb:cc:dd:ee:01");
    const response = await boot(t, "/boot/manual/group/compute-group/AA-BB-CC-DD-EE-41");
    assert.equal(response.status, 200);
    assert.equal(kernelParameter(await response.text(), "luna.node"), "node002");
    const again = await (await boot(t, "/boot/manual/group/compute-group/aa:bb:cc:dd:ee:41")).text();
    assert.equal(kernelParameter(again, "luna.node"), "node002", "repeat keeps the node");
    assert.equal((await storedMacs(t)).get("aa:bb:cc:dd:ee:41"), "node002/BOOTIF");
  });

  test("group route moves a MAC from another group", async () => {
    await t.db.write(async (tx) => {
      const [source] = await tx.select().from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
      await tx.insert(nodeGroup).values({ name: "gpu group", osimage_id: source.osimage_id, netboot: true });
    });
    await setMac(t, "node001", "BOOTIF", "aa:bb:cc:dd:ee:42");
    const response = await boot(t, "/boot/manual/group/gpu%20group/aa:bb:cc:dd:ee:42");
    assert.equal(response.status, 404);
    // gpu group has no nodes and no interfaces, so a new node is made with just the MAC interface.
    const macs = await storedMacs(t);
    assert.equal(macs.get("aa:bb:cc:dd:ee:42"), "node005/BOOTIF");
    assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.match(await response.text(), /has no address on its provisioning interface BOOTIF/);
  });

  test("group route creates a node when none is free", async () => {
    for (const [index, name] of ["node001", "node002", "node003", "node004"].entries()) await setMac(t, name, "BOOTIF", `aa:bb:cc:dd:ee:0${index}`);
    await setCluster(t, { nextnode_discover: false, createnode_ondemand: false });
    const script = await (await boot(t, "/boot/manual/group/compute-group/aa:bb:cc:dd:ee:43")).text();
    assert.equal(kernelParameter(script, "luna.node"), "node005");
    assert.equal(kernelParameter(script, "luna.ip"), "10.141.0.5/16");
  });

  test("hostname route moves the MAC to the node", async () => {
    await setMac(t, "node001", "BOOTIF", "aa:bb:cc:dd:ee:44");
    await setMac(t, "node003", "BOOTIF", "aa:bb:cc:dd:ee:03");
    const response = await boot(t, "/boot/manual/hostname/node003/AA:BB:CC:DD:EE:44");
    assert.equal(response.status, 200);
    assert.equal(kernelParameter(await response.text(), "luna.node"), "node003");
    const macs = await storedMacs(t);
    assert.equal(macs.get("aa:bb:cc:dd:ee:44"), "node003/BOOTIF");
    assert.equal(macs.has("aa:bb:cc:dd:ee:03"), false, "the node's old MAC is replaced");
    assert.equal(macs.size, 1);
  });

  const failures: { path: string; status: number; message: RegExp }[] = [
    { path: "/boot/manual/group/no-such-group/aa:bb:cc:dd:ee:45", status: 404, message: /^echo Group "no-such-group" does not exist$/m },
    { path: "/boot/manual/group/bad%24group/aa:bb:cc:dd:ee:45", status: 400, message: /^echo Invalid request: Group name "bad_group" is invalid/m },
    { path: "/boot/manual/group/compute-group/not-a-mac", status: 400, message: /MAC address "not-a-mac" is invalid/ },
    { path: "/boot/manual/hostname/node999/aa:bb:cc:dd:ee:45", status: 404, message: /^echo Node "node999" does not exist$/m },
    { path: "/boot/manual/hostname/Node1/aa:bb:cc:dd:ee:45", status: 400, message: /^echo Invalid request: Node name "Node1" is invalid/m },
    { path: "/boot/manual/hostname/node001/aa:bb", status: 400, message: /MAC address "aa:bb" is invalid/ },
  ];
  for (const item of failures) {
    test(`${item.status} script for ${item.path}`, async () => {
      const response = await boot(t, item.path);
      assert.equal(response.status, item.status);
      const script = await response.text();
      assert.ok(script.startsWith("#!ipxe\n"));
      assert.match(script, item.message);
      assert.equal((await storedMacs(t)).size, 0);
    });
  }
});

describe("boot routes with the database unavailable", () => {
  const paths = ["/boot", "/boot/short", "/boot/disk", "/boot/search/mac/aa:bb:cc:dd:ee:01", "/boot/manual/group/compute-group/aa:bb:cc:dd:ee:01", "/boot/manual/hostname/node001/aa:bb:cc:dd:ee:01"];
  for (const path of paths) {
    test(`503 script for ${path}`, async () => {
      const t = await createTestApp();
      t.db.close();
      const response = await boot(t, path, socketEnv("10.141.0.9", "10.141.255.254"));
      assert.equal(response.status, 503);
      const script = await response.text();
      assert.ok(script.startsWith("#!ipxe\n"));
      assert.match(script, /^echo Database unavailable \(CLIENT_CLOSED\): try again later$/m);
      assert.match(script, /^chain --replace --autofree http:\/\/10\.141\.255\.254:7050\/boot \|\| goto error$/m, "falls back to the local address");
      await t.close();
    });
  }

  test("503 script falls back to the Host header", async () => {
    const t = await createTestApp();
    t.db.close();
    const response = await boot(t, "/boot", socketEnv("127.0.0.1", "127.0.0.1"), { host: "10.0.2.2:8080" });
    assert.equal(response.status, 503);
    assert.match(await response.text(), /^chain --replace --autofree http:\/\/10\.0\.2\.2:8080\/boot \|\| goto error$/m);
    await t.close();
  });

  for (const path of ["/boot/short", "/boot/disk"]) {
    test(`${path} needs no database on loopback`, async () => {
      const t = await createTestApp();
      t.db.close();
      const response = await boot(t, path, socketEnv("127.0.0.1", "127.0.0.1"), { host: "10.0.2.2:8080" });
      assert.equal(response.status, 200);
      assert.ok((await response.text()).startsWith("#!ipxe\n"));
      await t.close();
    });
  }
});
