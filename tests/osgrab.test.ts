import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { osimage } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";
import { startSshd, type TestSshd } from "./sshd.ts";

describe("OS grab and push with real rsync over ssh", () => {
  let t: TestApp;
  let sshd: TestSshd;
  let live: string;
  let image: string;

  before(async () => {
    t = await createTestApp({ realHardware: true, configExtra: "" });
    sshd = await startSshd(join(t.directory, "sshd"), ["node004"]);
    t.config.ssh.configFile = sshd.configFile;
    t.config.ssh.connectTimeoutSeconds = 2;

    // The "node" is this machine reached through sshd; its file system is a folder of the test.
    live = join(t.directory, "live-node");
    mkdirSync(join(live, "etc"), { recursive: true });
    mkdirSync(join(live, "var", "log"), { recursive: true });
    writeFileSync(join(live, "etc", "motd"), "grabbed from the node\n");
    writeFileSync(join(live, "var", "log", "messages"), "excluded\n");
    image = join(t.directory, "images", "compute-image");
    await t.db.write((tx) =>
      tx.update(osimage).set({ path: image, grab_filesystems: `${live}/`, grab_exclude: `${live}/var/log/*` }).where(eq(osimage.name, "compute-image")));
  });
  after(async () => {
    await sshd?.stop();
    await t?.close();
  });

  const inImage = (...parts: string[]) => join(image, live, ...parts);

  const runToEnd = async (response: Response) => {
    assert.equal(response.status, 200);
    const { request_id: requestId } = await response.json();
    const lines: string[] = [];
    let worst = 200;
    for (let attempt = 0; attempt < 1500; attempt++) {
      const poll = await t.request(`/config/status/${requestId}`);
      if (poll.status === 404) return { lines, worst };
      const body = await poll.json();
      if (body.message) lines.push(...body.message.split(";;"));
      if (body.status !== 200) worst = body.status;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`job ${requestId} did not end: ${lines.join(" | ")}`);
  };

  const grab = (fields: Record<string, unknown>) =>
    t.request("/config/node/node001/_osgrab", { method: "POST", json: { config: { node: { node001: fields } } } });

  test("a grab without nodry is a dry run that copies nothing", async () => {
    const { lines, worst } = await runToEnd(await grab({}));
    assert.equal(worst, 200, lines.join("\n"));
    assert.ok(lines.some((line) => /\(dry run\)/.test(line)), lines.join("\n"));
    assert.ok(!existsSync(inImage("etc", "motd")));
  });

  test("a real bare grab copies the node's files without the excluded ones", async () => {
    const { lines, worst } = await runToEnd(await grab({ nodry: true, bare: true }));
    assert.equal(worst, 200, lines.join("\n"));
    assert.equal(readFileSync(inImage("etc", "motd"), "utf8"), "grabbed from the node\n");
    assert.ok(!existsSync(inImage("var", "log", "messages")), "grab_exclude was not applied");
    const [row] = await t.db.orm.select().from(osimage).where(eq(osimage.name, "compute-image"));
    assert.equal(row.changed, true);
  });

  test("a later grab removes files deleted on the node", async () => {
    writeFileSync(inImage("etc", "stale"), "only in the image\n");
    await runToEnd(await grab({ nodry: true, bare: true }));
    assert.ok(!existsSync(inImage("etc", "stale")));
  });

  test("a real push copies image files onto the node", async () => {
    writeFileSync(inImage("etc", "pushed"), "from the image\n");
    const response = await t.request("/config/node/node001/_ospush", { method: "POST", json: { config: { node: { node001: { nodry: true } } } } });
    const { worst, lines } = await runToEnd(response);
    assert.equal(worst, 200, lines.join("\n"));
    assert.equal(readFileSync(join(live, "etc", "pushed"), "utf8"), "from the image\n");
    rmSync(join(live, "etc", "pushed"));
  });

  test("a group push reports exactly one result per member", async () => {
    const response = await t.request("/config/group/compute-group/_ospush", { method: "POST", json: { config: { group: { "compute-group": { nodry: true } } } } });
    const { lines, worst } = await runToEnd(response);
    const results = lines.filter((line) => / :: node\d{3}: /.test(line)).map((line) => line.split(" :: ")[1]);
    assert.equal(results.length, 4, lines.join("\n"));
    for (const name of ["node001", "node002", "node003"]) assert.ok(results.includes(`${name}: success`), lines.join("\n"));
    // rsync exits with 12 or 255 for a refused ssh connection, depending on which side notices first.
    assert.ok(results.some((line) => /^node004: failed: rsync exited with \d+: ssh: connect to host 127\.0\.0\.1/.test(line)), lines.join("\n"));
    assert.equal(worst, 500);
  });

  test("rsync runs without a shell and ssh never prompts", () => {
    const call = t.hardware.calls.find((spec) => spec.program === "rsync");
    assert.ok(call);
    const ssh = call.args[call.args.indexOf("-e") + 1];
    assert.match(ssh, /^ssh -o BatchMode=yes /);
  });

  const rejected: [string, string, unknown, number][] = [
    ["unknown node", "/config/node/node999/_osgrab", { config: { node: { node999: {} } } }, 404],
    ["unknown image", "/config/node/node001/_osgrab", { config: { node: { node001: { osimage: "nothing" } } } }, 404],
    ["body for another node", "/config/node/node001/_ospush", { config: { node: { node002: {} } } }, 400],
    ["unknown key", "/config/node/node001/_osgrab", { config: { node: { node001: { force: true } } } }, 400],
    ["unknown group", "/config/group/nothing/_ospush", { config: { group: { nothing: {} } } }, 404],
  ];
  for (const [name, path, body, status] of rejected) {
    test(`rejects ${name} with ${status}`, async () => {
      assert.equal((await t.request(path, { method: "POST", json: body })).status, status);
    });
  }
});
