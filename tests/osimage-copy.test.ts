import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { osimage } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

describe("OS image clone with its directory", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ realHardware: true });
    const root = join(t.config.files.imageDirectory, "compute-image");
    mkdirSync(join(root, "boot"), { recursive: true });
    mkdirSync(join(root, "etc"), { recursive: true });
    writeFileSync(join(root, "boot", "vmlinuz-6.1.0-copy"), "kernel");
    writeFileSync(join(root, "boot", "initramfs-6.1.0-copy.img"), "initrd");
    writeFileSync(join(root, "etc", "hostname"), "compute\n");
    symlinkSync("hostname", join(root, "etc", "name-link"));
    await t.db.write((tx) => tx.update(osimage).set({ kernelversion: "6.1.0-copy" }).where(eq(osimage.name, "compute-image")));
  });
  after(() => t.close());

  const clone = (fields: Record<string, unknown>) =>
    t.request("/config/osimage/compute-image/_clone", { method: "POST", json: { config: { osimage: { "compute-image": fields } } } });

  const waitForJob = async (requestId: string) => {
    const lines: string[] = [];
    for (let attempt = 0; attempt < 500; attempt++) {
      const response = await t.request(`/config/status/${requestId}`);
      if (response.status === 404) return lines;
      const { message } = await response.json();
      if (message) lines.push(...message.split(";;"));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error("clone job did not end");
  };

  test("copies the tree, keeps links, and packs the clone", async () => {
    const response = await clone({ newosimage: "copy-image" });
    assert.equal(response.status, 200);
    const lines = await waitForJob((await response.json()).request_id);
    const copy = join(t.config.files.imageDirectory, "copy-image");
    assert.equal(readFileSync(join(copy, "etc", "hostname"), "utf8"), "compute\n");
    assert.equal(readFileSync(join(copy, "etc", "name-link"), "utf8"), "compute\n");
    assert.ok(lines.some((line) => /finished packing osimage copy-image/.test(line)), lines.join("\n"));
    const [row] = await t.db.orm.select().from(osimage).where(eq(osimage.name, "copy-image"));
    assert.match(row.imagefile ?? "", /^copy-image-\d+\.tar\.zst$/);
  });

  test("bare copies without packing", async () => {
    const lines = await waitForJob((await (await clone({ newosimage: "bare-image", bare: true })).json()).request_id);
    assert.ok(!lines.some((line) => /packing/.test(line)), lines.join("\n"));
    assert.ok(existsSync(join(t.config.files.imageDirectory, "bare-image", "etc", "hostname")));
  });

  test("a failed copy removes the clone's record", async () => {
    mkdirSync(join(t.config.files.imageDirectory, "taken-image"));
    const lines = await waitForJob((await (await clone({ newosimage: "taken-image" })).json()).request_id);
    assert.ok(lines.some((line) => /already exists/.test(line)), lines.join("\n"));
    assert.equal((await t.db.orm.select().from(osimage).where(eq(osimage.name, "taken-image"))).length, 0);
  });
});
