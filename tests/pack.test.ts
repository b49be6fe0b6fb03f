import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { osimage } from "../lib/db/schema/index.ts";
import { PARTIAL_SUFFIX } from "../lib/pack.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

const KERNEL = "6.1.0-test-amd64";

/** Writes a small image tree with a kernel, an initrd and files that must or must not be packed. */
function writeImageTree(root: string, payloadBytes: number): void {
  for (const directory of ["boot", "etc", "usr/lib", "proc/1", "sys/kernel", "tmp"]) mkdirSync(join(root, directory), { recursive: true });
  writeFileSync(join(root, "boot", `vmlinuz-${KERNEL}`), randomBytes(64 * 1024));
  writeFileSync(join(root, "boot", `initramfs-${KERNEL}.img`), randomBytes(32 * 1024));
  writeFileSync(join(root, "etc", "hostname"), "image\n");
  writeFileSync(join(root, "usr", "lib", "payload.bin"), randomBytes(payloadBytes));
  writeFileSync(join(root, "proc", "1", "status"), "must not be packed\n");
  writeFileSync(join(root, "tmp", "scratch"), "must not be packed\n");
  symlinkSync("hostname", join(root, "etc", "hostname-link"));
}

function listArchive(path: string): string[] {
  const result = spawnSync("tar", ["--use-compress-program=zstd", "-tf", path], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.split("\n").filter(Boolean);
}

describe("OS image packing with real tar and zstd", () => {
  let t: TestApp;
  let root: string;
  before(async () => {
    t = await createTestApp({ realHardware: true });
    root = join(t.directory, "images", "compute-image");
    writeImageTree(root, 256 * 1024);
    await t.db.write((tx) => tx.update(osimage).set({ kernelversion: KERNEL, path: root }).where(eq(osimage.name, "compute-image")));
  });
  after(() => t.close());

  const waitForJob = async (requestId: string) => {
    const lines: string[] = [];
    for (let attempt = 0; attempt < 600; attempt++) {
      const response = await t.request(`/config/status/${requestId}`);
      if (response.status === 404) return lines;
      const body = await response.json();
      if (body.message) lines.push(...body.message.split(";;"));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error("pack job did not end in time");
  };

  test("_pack writes kernel, initrd and archive and points the image at them", async () => {
    const response = await t.request("/config/osimage/compute-image/_pack");
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.message, "osimage pack for compute-image queued");
    const lines = await waitForJob(body.request_id);
    assert.ok(lines.some((line) => /finished packing osimage compute-image/.test(line)), lines.join("\n"));

    const [row] = await t.db.orm.select().from(osimage).where(eq(osimage.name, "compute-image"));
    assert.match(row.imagefile ?? "", /^compute-image-\d+\.tar\.zst$/);
    const files = t.config.files.imageFiles;
    assert.deepEqual(readFileSync(join(files, row.kernelfile!)), readFileSync(join(root, "boot", `vmlinuz-${KERNEL}`)));
    assert.deepEqual(readFileSync(join(files, row.initrdfile!)), readFileSync(join(root, "boot", `initramfs-${KERNEL}.img`)));

    const entries = listArchive(join(files, row.imagefile!));
    assert.ok(entries.includes("./usr/lib/payload.bin"));
    assert.ok(entries.includes("./etc/hostname-link"));
    assert.ok(entries.includes("./proc/"), "the mount point itself stays in the archive");
    assert.ok(!entries.includes("./proc/1/status"), "the contents of /proc are excluded");
    assert.ok(!entries.includes("./tmp/scratch"));
  });

  test("tar runs without a shell, with multi-threaded zstd", () => {
    const call = t.hardware.calls.find((spec) => spec.program === "tar");
    assert.ok(call);
    assert.ok(call.args.includes("--use-compress-program=zstd"));
    assert.equal(call.env?.ZSTD_NBTHREADS, "0");
  });

  test("a second request while a pack runs joins it", async () => {
    const first = await (await t.request("/config/osimage/compute-image/_pack")).json();
    const second = await (await t.request("/config/osimage/compute-image/_pack")).json();
    assert.equal(second.request_id, first.request_id);
    assert.equal(second.message, "osimage pack for compute-image already queued");
    await waitForJob(first.request_id);
  });

  test("the previous archive stays complete while a new pack is written", async () => {
    writeFileSync(join(root, "usr", "lib", "payload.bin"), randomBytes(48 * 1024 * 1024));
    t.clock.advance(5000);
    const [before] = await t.db.orm.select().from(osimage).where(eq(osimage.name, "compute-image"));
    const files = t.config.files.imageFiles;
    const previous = readFileSync(join(files, before.imagefile!));

    const { request_id } = await (await t.request("/config/osimage/compute-image/_pack")).json();
    let sawPartial = false;
    const done = waitForJob(request_id);
    let finished = false;
    done.then(() => (finished = true), () => (finished = true));
    while (!finished) {
      for (const name of readdirSync(files)) {
        if (name.endsWith(PARTIAL_SUFFIX)) sawPartial = true;
      }
      assert.deepEqual(readFileSync(join(files, before.imagefile!)), previous, "the previous archive changed during the pack");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await done;

    const [after] = await t.db.orm.select().from(osimage).where(eq(osimage.name, "compute-image"));
    assert.notEqual(after.imagefile, before.imagefile);
    assert.ok(existsSync(join(files, before.imagefile!)), "the previous set is kept for downloads in progress");
    assert.ok(!readdirSync(files).some((name) => name.endsWith(PARTIAL_SUFFIX)));
    assert.ok(sawPartial, "the new archive was written under a temporary name first");
  });

  test("kernel with bare sets the version without packing", async () => {
    const response = await t.request("/config/osimage/compute-image/kernel", {
      method: "POST",
      json: { config: { osimage: { "compute-image": { kernelversion: "6.2.0-new", bare: true } } } },
    });
    assert.equal(response.status, 204);
    const [row] = await t.db.orm.select().from(osimage).where(eq(osimage.name, "compute-image"));
    assert.equal(row.kernelversion, "6.2.0-new");
    assert.equal(row.changed, true);
  });

  test("kernel without bare starts a pack that fails for a missing kernel file", async () => {
    const response = await t.request("/config/osimage/compute-image/kernel", {
      method: "POST",
      json: { config: { osimage: { "compute-image": { kernelversion: "6.3.0-missing" } } } },
    });
    assert.equal(response.status, 200);
    const lines = await waitForJob((await response.json()).request_id);
    assert.ok(lines.some((line) => /failed: kernel .*vmlinuz-6\.3\.0-missing does not exist/.test(line)), lines.join("\n"));
  });

  const rejected: [string, string, RequestInit & { json?: unknown }, number][] = [
    ["unknown image pack", "/config/osimage/nothing/_pack", {}, 404],
    ["POST to _pack", "/config/osimage/compute-image/_pack", { method: "POST" }, 405],
    ["GET of kernel", "/config/osimage/compute-image/kernel", {}, 405],
    ["kernel for unknown image", "/config/osimage/nothing/kernel", { method: "POST", json: { config: { osimage: { nothing: { kernelversion: "1" } } } } }, 404],
    ["kernel version with a slash", "/config/osimage/compute-image/kernel", { method: "POST", json: { config: { osimage: { "compute-image": { kernelversion: "../x" } } } } }, 400],
  ];
  for (const [name, path, init, status] of rejected) {
    test(`rejects ${name} with ${status}`, async () => {
      assert.equal((await t.request(path, init)).status, status);
    });
  }
});
