import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { and, eq } from "drizzle-orm";
import { bootstrapIfEmpty } from "../lib/bootstrap.ts";
import { parseConfig } from "../lib/config.ts";
import { openDatabase } from "../lib/db/database.ts";
import { controller, ipAddress, network, node, nodeInterface, osimage } from "../lib/db/schema/index.ts";
import { ensureKeyFile } from "../lib/secrets.ts";

// Two network namespaces joined by a veth pair: the daemon listens on 10.77.0.1 in the server
// namespace, and the client namespace sends from 10.77.0.2 (node002's provisioning address) and
// from 10.77.0.3. Nothing is sent to 10.77.0.0/24 from the main namespace.
const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const SERVER_ADDRESS = "10.77.0.1";
const NODE_ADDRESS = "10.77.0.2";
const OTHER_ADDRESS = "10.77.0.3";
const PORT = 7050;
const suffix = `${process.pid}`;
const SERVER_NAMESPACE = `luna2-srv-${suffix}`;
const CLIENT_NAMESPACE = `luna2-cli-${suffix}`;
const SERVER_LINK = `lvs${suffix}`.slice(0, 15);
const CLIENT_LINK = `lvc${suffix}`.slice(0, 15);

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

function canUseNamespaces(): string | null {
  if (process.getuid?.() !== 0) return "needs root to create network namespaces";
  try {
    execFileSync("ip", ["-V"], { stdio: "ignore" });
    execFileSync("curl", ["--version"], { stdio: "ignore" });
  } catch {
    return "needs the ip and curl commands";
  }
  return null;
}

function deleteNamespaces(): void {
  for (const name of [SERVER_NAMESPACE, CLIENT_NAMESPACE]) {
    try {
      ip("netns", "delete", name);
    } catch {
      // Not created, or already gone.
    }
  }
}

function createNamespaces(): void {
  ip("netns", "add", SERVER_NAMESPACE);
  ip("netns", "add", CLIENT_NAMESPACE);
  ip("link", "add", SERVER_LINK, "type", "veth", "peer", "name", CLIENT_LINK);
  ip("link", "set", SERVER_LINK, "netns", SERVER_NAMESPACE);
  ip("link", "set", CLIENT_LINK, "netns", CLIENT_NAMESPACE);
  ip("-n", SERVER_NAMESPACE, "addr", "add", `${SERVER_ADDRESS}/24`, "dev", SERVER_LINK);
  ip("-n", CLIENT_NAMESPACE, "addr", "add", `${NODE_ADDRESS}/24`, "dev", CLIENT_LINK);
  ip("-n", CLIENT_NAMESPACE, "addr", "add", `${OTHER_ADDRESS}/24`, "dev", CLIENT_LINK);
  for (const [namespace, link] of [[SERVER_NAMESPACE, SERVER_LINK], [CLIENT_NAMESPACE, CLIENT_LINK]]) {
    ip("-n", namespace, "link", "set", "lo", "up");
    ip("-n", namespace, "link", "set", link, "up");
  }
}

/** Sends a GET from the client namespace with curl bound to `source`; returns status and body. */
function curlFrom(source: string, path: string, headers: string[] = []): Promise<{ status: number; body: string }> {
  const args = ["netns", "exec", CLIENT_NAMESPACE, "curl", "--silent", "--max-time", "10", "--interface", source, "--write-out", "\n%{http_code}"];
  for (const header of headers) args.push("-H", header);
  args.push(`http://${SERVER_ADDRESS}:${PORT}${path}`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn("ip", args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("close", () => {
      const cut = output.lastIndexOf("\n");
      resolvePromise({ status: Number(output.slice(cut + 1)), body: output.slice(0, cut) });
    });
  });
}

/** The command that runs main.ts on the runtime running this test. */
function daemonCommand(configFile: string): string[] {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  if (deno) return [deno.execPath(), "run", "--allow-all", join(ROOT, "main.ts"), "--config", configFile];
  return [process.execPath, "--import", "tsx", join(ROOT, "main.ts"), "--config", configFile];
}

async function prepareDatabase(directory: string): Promise<string> {
  const configFile = join(directory, "luna.ini");
  const text = [
    "[API]",
    "USERNAME = luna",
    "PASSWORD = netns test password",
    "SECRET_KEY = netns-test-secret-key-0123456789abcdef",
    `LISTEN = ${SERVER_ADDRESS}:${PORT}`,
    "[LOGGER]",
    "LEVEL = warning",
    "",
  ].join("\n");
  writeFileSync(configFile, text);
  const config = parseConfig(text, configFile);
  ensureKeyFile(config.files.keyfile);
  const db = await openDatabase(config.database);
  try {
    await bootstrapIfEmpty(db, config, Date.now());
    await db.write(async (tx) => {
      const [net] = await tx.insert(network).values({ name: "nsnet", network: "10.77.0.0", subnet: 24, gateway: SERVER_ADDRESS }).returning();
      const [beacon] = await tx.select().from(controller).where(eq(controller.beacon, true));
      await tx.insert(ipAddress).values({ network_id: net.id, ipaddress: SERVER_ADDRESS, controller_id: beacon.id });
      const [bootif] = await tx
        .select({ id: nodeInterface.id })
        .from(nodeInterface)
        .innerJoin(node, eq(node.id, nodeInterface.node_id))
        .where(and(eq(node.name, "node002"), eq(nodeInterface.interface, "BOOTIF")));
      await tx.update(ipAddress).set({ network_id: net.id, ipaddress: NODE_ADDRESS }).where(eq(ipAddress.node_interface_id, bootif.id));
      await tx.update(nodeInterface).set({ macaddress: "52:54:00:77:00:02" }).where(eq(nodeInterface.id, bootif.id));
      await tx.update(osimage).set({ kernelfile: "vmlinuz", initrdfile: "initramfs", imagefile: "compute-image.tar.zst" });
    });
  } finally {
    db.close();
  }
  return configFile;
}

const skipReason = canUseNamespaces();

describe("install authorisation across network namespaces", { skip: skipReason ?? false }, () => {
  let directory: string;
  let daemon: ChildProcess | null = null;
  let daemonOutput = "";

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), "luna2-netns-"));
    deleteNamespaces();
    try {
      createNamespaces();
      const configFile = await prepareDatabase(directory);
      const [command, ...args] = daemonCommand(configFile);
      daemon = spawn("ip", ["netns", "exec", SERVER_NAMESPACE, command, ...args], {
        cwd: ROOT,
        env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      daemon.stdout!.setEncoding("utf8").on("data", (chunk) => (daemonOutput += chunk));
      daemon.stderr!.setEncoding("utf8").on("data", (chunk) => (daemonOutput += chunk));
      const deadline = Date.now() + 30_000;
      for (;;) {
        const probe = await curlFrom(OTHER_ADDRESS, "/ping");
        if (probe.status === 200) break;
        if (Date.now() > deadline || daemon.exitCode !== null) throw new Error(`Daemon did not start in ${SERVER_NAMESPACE}: ${daemonOutput}`);
        await new Promise((wait) => setTimeout(wait, 200));
      }
    } catch (error) {
      stopDaemon();
      deleteNamespaces();
      throw error;
    }
  });

  function stopDaemon(): void {
    // The daemon runs in its own process group, started above; stop that group by its id.
    if (daemon?.pid && daemon.exitCode === null) {
      try {
        process.kill(-daemon.pid, "SIGTERM");
      } catch {
        // Already exited.
      }
    }
  }

  after(async () => {
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((done) => daemon!.once("exit", done));
      stopDaemon();
      await Promise.race([exited, new Promise((done) => setTimeout(done, 5000))]);
    }
    deleteNamespaces();
    rmSync(directory, { recursive: true, force: true });
  });

  test("200 from the node's provisioning address", async () => {
    const response = await curlFrom(NODE_ADDRESS, "/boot/install/node002");
    assert.equal(response.status, 200, response.body);
    assert.ok(response.body.startsWith("#!/bin/bash\n"));
    assert.match(response.body, /^export LUNA_URL='http:\/\/10\.77\.0\.1:7050'$/m, "URLs use the controller address in the request's network");
    assert.match(response.body, /^export LUNA_IPADDRESS='10\.77\.0\.2'$/m);
  });

  test("403 from another address of the same network", async () => {
    const response = await curlFrom(OTHER_ADDRESS, "/boot/install/node002");
    assert.equal(response.status, 403, response.body);
    assert.match(JSON.parse(response.body).message, /10\.77\.0\.3 is not its provisioning address/);
  });

  test("boot script URLs use the namespace network", async () => {
    const response = await curlFrom(OTHER_ADDRESS, "/boot/search/mac/52-54-00-77-00-02");
    assert.equal(response.status, 200, response.body);
    assert.match(response.body, /^imgfetch --name kernel http:\/\/10\.77\.0\.1:7050\/files\/vmlinuz /m);
    assert.match(response.body, /luna\.ip=10\.77\.0\.2\/24 luna\.gw=10\.77\.0\.1 /);
  });
});
