import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { and, eq } from "drizzle-orm";
import { cluster, node, nodeInterface, osimage } from "../lib/db/schema/index.ts";
import { getNodeStatus } from "../lib/node-status.ts";
import { createTestApp, type TestApp } from "./helpers.ts";
import {
  type BootAssets,
  buildBootAssets,
  GUEST_DAEMON_ADDRESS,
  listenDaemon,
  type ListeningDaemon,
  type RecordedRequest,
  serialMarkers,
  startVm,
  type VmResult,
} from "./vm.ts";

// A guest that boots normally took 30 to 50 s here (software emulation, two guests on two
// cores), 10 s of which is the boot menu's timeout.
const VM_TIMEOUT_MS = 150_000;
const KNOWN_MAC = "52:54:00:4c:00:01";
const UNKNOWN_MAC = "52:54:00:4c:00:99";
const KERNEL_FILE = "compute-image-vmtest-vmlinuz";
const INITRD_FILE = "compute-image-vmtest-initramfs";

/** One guest of the test: its MAC, the node it must boot as, the daemon port it uses and how it ended. */
interface Guest {
  mac: string;
  node: string;
  daemon: ListeningDaemon;
  result: VmResult;
}

/** Lower-case colon form of a MAC address in a request path, whatever form iPXE sent it in. */
function macOfPath(path: string, prefix: string): string | null {
  if (!path.startsWith(prefix)) return null;
  return decodeURIComponent(path.slice(prefix.length)).toLowerCase().replaceAll("-", ":");
}

/**
 * Returns the requests that match `steps` in order, each the first match after the previous
 * one, and fails naming the first step that has no match, with the whole request log.
 */
function findSequence(requests: RecordedRequest[], steps: { label: string; match: (request: RecordedRequest) => boolean }[]): RecordedRequest[] {
  const found: RecordedRequest[] = [];
  let from = 0;
  for (const step of steps) {
    const index = requests.findIndex((request, position) => position >= from && step.match(request));
    if (index === -1) {
      const log = requests.map((request) => `  ${request.at} ms ${request.method} ${request.path} ${request.status}`).join("\n");
      assert.fail(`missing step "${step.label}" after request ${from} in the daemon's request log:\n${log}`);
    }
    found.push(requests[index]);
    from = index + 1;
  }
  return found;
}

/** Describes a guest's end for assertion messages: exit, duration, markers and the serial log's tail. */
function describeGuest(guest: Guest): string {
  const tail = guest.result.serial.split("\n").slice(-25).join("\n");
  return `VM ${guest.mac}: exit ${guest.result.exit} after ${guest.result.durationMs} ms, timed out: ${guest.result.timedOut}\nQEMU output: ${guest.result.output}\nserial log tail:\n${tail}`;
}

describe("network boot in QEMU", () => {
  let t: TestApp;
  let assets: BootAssets;
  const guests: Guest[] = [];
  const daemons: ListeningDaemon[] = [];

  before(async () => {
    assets = await buildBootAssets();
    t = await createTestApp();

    const files = t.config.files.imageFiles;
    mkdirSync(files, { recursive: true });
    copyFileSync(assets.kernel, join(files, KERNEL_FILE));
    copyFileSync(assets.initrd, join(files, INITRD_FILE));

    const [known] = await t.db.orm.select({ id: node.id }).from(node).where(eq(node.name, "node001"));
    await t.db.write(async (tx) => {
      // The install script route needs an image file name; the initramfs never downloads it.
      await tx.update(osimage).set({
        kernelfile: KERNEL_FILE,
        initrdfile: INITRD_FILE,
        imagefile: "compute-image-vmtest.tar.zst",
        kerneloptions: "console=ttyS0 panic=-1",
      }).where(eq(osimage.name, "compute-image"));
      await tx.update(cluster).set({ nextnode_discover: true });
      await tx.update(nodeInterface).set({ macaddress: KNOWN_MAC }).where(and(eq(nodeInterface.node_id, known.id), eq(nodeInterface.interface, "BOOTIF")));
    });

    // One listener per guest, so each request log contains one guest's requests only.
    const plan = [
      { mac: KNOWN_MAC, node: "node001" },
      { mac: UNKNOWN_MAC, node: "node002" },
    ];
    while (daemons.length < plan.length) daemons.push(await listenDaemon(t));
    const running = plan.map((entry, index) =>
      startVm({ assets, port: daemons[index].port, mac: entry.mac, serialLog: join(t.directory, `serial-${index}.log`), timeoutMs: VM_TIMEOUT_MS })
    );
    try {
      const results = await Promise.all(running.map((vm) => vm.result));
      plan.forEach((entry, index) => guests.push({ ...entry, daemon: daemons[index], result: results[index] }));
    } finally {
      for (const vm of running) vm.kill();
    }
  });

  after(async () => {
    for (const daemon of daemons) await daemon.close();
    await t?.close();
  });

  test("both guests power off by themselves", () => {
    assert.equal(guests.length, 2);
    for (const guest of guests) {
      assert.equal(guest.result.timedOut, false, describeGuest(guest));
      assert.equal(guest.result.exit, 0, describeGuest(guest));
    }
  });

  test("boot chain from the daemon's side", () => {
    for (const guest of guests) {
      const { requests, port } = guest.daemon;
      const [menu, script, kernel, initrd, install, status] = findSequence(requests, [
        { label: "GET /boot", match: (r) => r.method === "GET" && r.path === "/boot" },
        { label: `GET /boot/search/mac/${guest.mac}`, match: (r) => r.method === "GET" && macOfPath(r.path, "/boot/search/mac/") === guest.mac },
        { label: `GET /files/${KERNEL_FILE}`, match: (r) => r.method === "GET" && r.path === `/files/${KERNEL_FILE}` },
        { label: `GET /files/${INITRD_FILE}`, match: (r) => r.method === "GET" && r.path === `/files/${INITRD_FILE}` },
        { label: `GET /boot/install/${guest.node}`, match: (r) => r.method === "GET" && r.path === `/boot/install/${guest.node}` },
        { label: `POST /monitor/status/${guest.node}`, match: (r) => r.method === "POST" && r.path === `/monitor/status/${guest.node}` },
      ]);
      const context = describeGuest(guest);

      assert.equal(menu.status, 200, context);
      assert.match(menu.body ?? "", /^#!ipxe/, context);

      assert.equal(script.status, 200, context);
      assert.match(script.body ?? "", /^#!ipxe/, context);
      assert.ok(script.body?.includes(`luna.node=${guest.node} `), `boot script is not for ${guest.node}:\n${script.body}`);
      assert.ok(script.body?.includes(`http://${GUEST_DAEMON_ADDRESS}:${port}/files/${KERNEL_FILE}`), `kernel URL is not the guest's view of the daemon:\n${script.body}`);

      assert.equal(kernel.status, 200, context);
      assert.equal(initrd.status, 200, context);

      assert.equal(install.status, 200, context);
      assert.match(install.body ?? "", /^#!/, context);

      assert.equal(status.status, 204, context);

      // The guest reached the daemon only through the address QEMU forwards.
      for (const request of requests) assert.equal(request.host, `${GUEST_DAEMON_ADDRESS}:${port}`, `${request.method} ${request.path}`);
    }
  });

  test("initramfs markers on the serial console", () => {
    for (const guest of guests) {
      const markers = serialMarkers(guest.result.serial);
      const context = `${describeGuest(guest)}\nmarkers: ${JSON.stringify(markers)}`;
      assert.ok(markers.some((line) => line.startsWith("dhcp 10.0.2.")), context);
      assert.ok(markers.some((line) => /^install script fetched bytes=[1-9]\d* first=#!/.test(line)), context);
      assert.ok(markers.includes("status posted"), context);
      assert.ok(markers.includes(`done node=${guest.node}`), context);
      assert.ok(!markers.some((line) => line.startsWith("FAILED")), context);
    }
  });

  test("unknown MAC discovered as next free node", async () => {
    const rows = await t.db.orm
      .select({ name: node.name, mac: nodeInterface.macaddress })
      .from(nodeInterface)
      .innerJoin(node, eq(node.id, nodeInterface.node_id))
      .where(eq(nodeInterface.interface, "BOOTIF"));
    const macs = Object.fromEntries(rows.map((row) => [row.name, row.mac]));
    assert.equal(macs.node001, KNOWN_MAC);
    assert.equal(macs.node002, UNKNOWN_MAC);
    assert.equal(macs.node003, null);
    assert.equal(macs.node004, null);
  });

  test("install state stored per node", async () => {
    for (const guest of guests) {
      const view = await getNodeStatus(t.db.orm, guest.node);
      assert.equal(view.monitor.status[guest.node].state, "install.success", guest.node);
    }
  });
});
