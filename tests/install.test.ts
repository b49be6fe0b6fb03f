import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { serve, type ServerType } from "@hono/node-server";
import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { request as httpRequest } from "node:http";
import { and } from "drizzle-orm";
import { ipAddress, network, node, nodeInterface, nodeStatus, osimage } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

function socketEnv(remote: string) {
  return { incoming: { socket: { remoteAddress: remote, localAddress: "10.141.255.254" } } };
}

async function packImage(t: TestApp, imagefile: string | null = "compute-image-1.tar.zst"): Promise<void> {
  await t.db.write((tx) => tx.update(osimage).set({ kernelfile: "vmlinuz", initrdfile: "initramfs", imagefile }));
}

function exportedValue(script: string, name: string): string | undefined {
  return new RegExp(`^export ${name}='([^']*)'$`, "m").exec(script)?.[1];
}

describe("GET /boot/install/{node} authorisation", () => {
  let t: TestApp;
  let tokens: Record<string, string>;
  before(async () => {
    t = await createTestApp();
    await packImage(t);
    const expired = await t.services.tokens.issueAdmin();
    t.clock.advance(2 * 3600 * 1000);
    tokens = {
      admin: t.token,
      node002: await t.services.tokens.issueProvision("node002"),
      node001: await t.services.tokens.issueProvision("node001"),
      garbage: "garbage",
      expired,
    };
    // The helper's admin token was issued before the clock moved: issue a fresh one.
    tokens.admin = await t.services.tokens.issueAdmin();
  });
  after(() => t.close());

  const cases: { name: string; node?: string; from: string; token?: string; status: number; message?: RegExp }[] = [
    { name: "node's own provisioning address", from: "10.141.0.2", status: 200 },
    { name: "own address as IPv4-mapped IPv6", from: "::ffff:10.141.0.2", status: 200 },
    { name: "another node's address", from: "10.141.0.3", status: 403, message: /^Access to the install script of node "node002" denied: 10\.141\.0\.3 is not its provisioning address/ },
    { name: "loopback without token", from: "127.0.0.1", status: 403 },
    { name: "admin token from anywhere", from: "192.168.7.7", token: "admin", status: 200 },
    { name: "node's provision token", from: "192.168.7.7", token: "node002", status: 200 },
    { name: "other node's provision token", from: "192.168.7.7", token: "node001", status: 403, message: /the provision token belongs to node "node001"/ },
    { name: "garbage token", from: "192.168.7.7", token: "garbage", status: 403 },
    { name: "expired token", from: "192.168.7.7", token: "expired", status: 403 },
    { name: "garbage token from own address", from: "10.141.0.2", token: "garbage", status: 200 },
    { name: "unknown node with admin token", node: "node999", from: "10.141.0.2", token: "admin", status: 404, message: /^Node "node999" does not exist$/ },
    { name: "unknown node without token", node: "node999", from: "10.141.0.2", status: 403 },
    { name: "invalid node name", node: "Node_2", from: "10.141.0.2", token: "admin", status: 400, message: /^Invalid request: Node name "Node_2" is invalid/ },
  ];
  for (const item of cases) {
    test(`${item.status} for ${item.name}`, async () => {
      const headers: Record<string, string> = item.token ? { "x-access-tokens": tokens[item.token] } : {};
      const response = await t.app.request(`/boot/install/${item.node ?? "node002"}`, { headers }, socketEnv(item.from));
      assert.equal(response.status, item.status);
      if (item.status === 200) {
        assert.equal(response.headers.get("content-type"), "text/x-shellscript; charset=utf-8");
        assert.ok((await response.text()).startsWith("#!/bin/bash\n"));
      } else if (item.message) {
        assert.match((await response.json()).message, item.message);
      }
    });
  }
});

describe("GET /boot/install/{node} script", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({ configExtra: "[WEBSERVER]\nPORT = 7051" });
    await packImage(t);
  });
  afterEach(() => t.close());

  test("embeds a provision token and the node's values", async () => {
    const response = await t.app.request("/boot/install/node002", {}, socketEnv("10.141.0.2"));
    assert.equal(response.status, 200);
    const script = await response.text();
    const claims = decodeJwt(exportedValue(script, "LUNA_TOKEN")!);
    assert.equal(claims.node, "node002");
    assert.equal(claims.scope, "provision");
    assert.equal(claims.exp, t.clock.now() / 1000 + 3600);
    const expected: Record<string, string> = {
      LUNA_NODE: "node002",
      LUNA_HOSTNAME: "node002.cluster",
      LUNA_IMAGEFILE: "compute-image-1.tar.zst",
      LUNA_URL: "http://10.141.255.254:7050",
      LUNA_FILES_URL: "http://10.141.255.254:7051/files",
      LUNA_BOOTIF: "BOOTIF",
      LUNA_IPADDRESS: "10.141.0.2",
      LUNA_PREFIX: "16",
      LUNA_GATEWAY: "10.141.255.254",
      LUNA_SYSTEMROOT: "/sysroot",
    };
    for (const [name, value] of Object.entries(expected)) assert.equal(exportedValue(script, name), value, name);
    const partscript = /^LUNA_PARTSCRIPT='([^']*)'$/m.exec(script)?.[1];
    assert.equal(atob(partscript!), "mount -o mpol=interleave -t tmpfs tmpfs /sysroot\n");
    assert.match(script, /"\$LUNA_URL\/monitor\/status\/\$LUNA_NODE"/);
  });

  test("is valid bash", async () => {
    const script = await (await t.app.request("/boot/install/node002", {}, socketEnv("10.141.0.2"))).text();
    const result = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
  });

  test("quotes values with quotes for bash", async () => {
    const id = (await t.db.orm.select({ id: node.id }).from(node).where(eq(node.name, "node002")))[0].id;
    await t.db.write((tx) => tx.update(node).set({ prescript: "it's $(not run)" }).where(eq(node.id, id)));
    const script = await (await t.app.request("/boot/install/node002", {}, socketEnv("10.141.0.2"))).text();
    assert.match(script, /^LUNA_PRESCRIPT='it'\\''s \$\(not run\)'$/m);
    assert.equal(spawnSync("bash", ["-n"], { input: script }).status, 0);
  });

  test("404 when the image has no image file", async () => {
    await packImage(t, null);
    const response = await t.request("/boot/install/node002");
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { message: 'OS image "compute-image" of node "node002" has no imagefile: pack the OS image' });
  });

  test("503 when the database is unavailable", async () => {
    t.db.close();
    const response = await t.request("/boot/install/node002");
    assert.equal(response.status, 503);
    assert.match((await response.json()).message, /^Database unavailable/);
  });
});

/** Runs a script with bash without blocking the event loop, because the daemon under test runs in this process. */
function runBash(script: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-s"], { stdio: ["pipe", "ignore", "pipe"], timeout: 60_000 });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
    child.stdin.end(script);
  });
}

describe("install script run against a real listener", () => {
  let t: TestApp;
  let server: ServerType;
  let port: number;
  let work: string;
  before(async () => {
    t = await createTestApp();
    server = serve({ fetch: t.app.fetch, hostname: "127.0.0.1", port: 0 });
    await new Promise((resolve) => server.once("listening", resolve));
    port = (server.address() as AddressInfo).port;
    work = mkdtempSync(join(tmpdir(), "luna2-install-"));
    const tree = join(work, "tree");
    mkdirSync(join(tree, "etc"), { recursive: true });
    writeFileSync(join(tree, "etc", "os-release"), "NAME=Test\n");
    mkdirSync(t.config.files.imageFiles, { recursive: true });
    execFileSync("tar", ["-I", "zstd", "-cf", join(t.config.files.imageFiles, "image-1.tar.zst"), "-C", tree, "."]);
    execFileSync("tar", ["-czf", join(t.config.files.imageFiles, "image-1.tar.gz"), "-C", tree, "."]);

    const id = (await t.db.orm.select({ id: node.id }).from(node).where(eq(node.name, "node002")))[0].id;
    await t.db.write((tx) => tx.update(node).set({
      prescript: btoa(`echo prescript > "${work}/prescript-ran"\n`),
      partscript: btoa('mkdir -p "$LUNA_SYSTEMROOT"\n'),
      postscript: btoa('echo "post $LUNA_NODE" > "$LUNA_SYSTEMROOT/postscript-ran"\n'),
    }).where(eq(node.id, id)));
    const secrets = await t.request("/config/secrets/node/node002", {
      method: "POST",
      json: { config: { secrets: { node: { node002: [{ name: "munge", content: btoa("secret key\n"), path: "/etc/munge/munge.key" }] } } } },
    });
    assert.equal(secrets.status, 201, await secrets.text());
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await t.close();
    rmSync(work, { recursive: true, force: true });
  });

  for (const archive of ["image-1.tar.zst", "image-1.tar.gz"]) {
    test(`installs ${archive} and reports each stage`, async () => {
      await packImage(t, archive);
      const root = join(work, `root-${archive}`);
      const response = await fetch(`http://127.0.0.1:${port}/boot/install/node002`, { headers: { "x-access-tokens": t.token } });
      assert.equal(response.status, 200);
      // The test cannot mount /sysroot, so the script installs into a temporary folder instead.
      const script = (await response.text()).replace("export LUNA_SYSTEMROOT='/sysroot'", `export LUNA_SYSTEMROOT='${root}'`);
      assert.equal(exportedValue(script, "LUNA_URL"), `http://127.0.0.1:${port}`);

      const child = await runBash(script);
      assert.equal(child.code, 0, child.stderr);
      assert.equal(readFileSync(join(root, "etc", "os-release"), "utf8"), "NAME=Test\n");
      assert.equal(readFileSync(join(root, "etc", "hostname"), "utf8"), "node002.cluster\n");
      assert.equal(readFileSync(join(root, "etc", "munge", "munge.key"), "utf8"), "secret key\n");
      assert.equal(statSync(join(root, "etc", "munge", "munge.key")).mode & 0o777, 0o600);
      assert.equal(readFileSync(join(root, "postscript-ran"), "utf8"), "post node002\n");
      assert.equal(readFileSync(join(work, "prescript-ran"), "utf8"), "prescript\n");
      const [status] = await t.db.orm.select({ state: nodeStatus.state }).from(nodeStatus).innerJoin(node, eq(node.id, nodeStatus.node_id)).where(eq(node.name, "node002"));
      assert.equal(status?.state, "install.success");
      assert.doesNotMatch(child.stderr, /cannot report state/);
    });
  }

  test("reports install.error when a script fails", async () => {
    await packImage(t, "image-1.tar.zst");
    const id = (await t.db.orm.select({ id: node.id }).from(node).where(eq(node.name, "node002")))[0].id;
    await t.db.write((tx) => tx.update(node).set({ partscript: btoa("exit 3\n") }).where(eq(node.id, id)));
    const response = await fetch(`http://127.0.0.1:${port}/boot/install/node002`, { headers: { "x-access-tokens": t.token } });
    const script = (await response.text()).replace("export LUNA_SYSTEMROOT='/sysroot'", `export LUNA_SYSTEMROOT='${join(work, "root-failed")}'`);
    const result = await runBash(script);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /installation of node002 failed: the partscript exited with status 3/);
    const [status] = await t.db.orm.select({ state: nodeStatus.state }).from(nodeStatus).where(eq(nodeStatus.node_id, id));
    assert.equal(status?.state, "install.error");
  });
});

/** Sends a GET from a chosen loopback source address, which the daemon reads as the client address. */
function getFrom(localAddress: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { localAddress, timeout: 10_000 }, (incoming) => {
      let body = "";
      incoming.setEncoding("utf8").on("data", (chunk) => (body += chunk));
      incoming.on("end", () => resolve({ status: incoming.statusCode ?? 0, body }));
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
}

describe("install authorisation by the socket's client address", () => {
  let t: TestApp;
  let server: ServerType;
  let base: string;
  before(async () => {
    t = await createTestApp();
    await packImage(t);
    // node002 provisions over a network on loopback, so two loopback source addresses stand for two machines.
    await t.db.write(async (tx) => {
      const [net] = await tx.insert(network).values({ name: "loopnet", network: "127.0.0.0", subnet: 8 }).returning();
      const [row] = await tx
        .select({ id: nodeInterface.id })
        .from(nodeInterface)
        .innerJoin(node, eq(node.id, nodeInterface.node_id))
        .where(and(eq(node.name, "node002"), eq(nodeInterface.interface, "BOOTIF")));
      await tx.update(ipAddress).set({ network_id: net.id, ipaddress: "127.0.0.2" }).where(eq(ipAddress.node_interface_id, row.id));
    });
    server = serve({ fetch: t.app.fetch, hostname: "127.0.0.1", port: 0 });
    await new Promise((resolve) => server.once("listening", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await t.close();
  });

  test("200 from the provisioning address", async () => {
    const response = await getFrom("127.0.0.2", `${base}/boot/install/node002`);
    assert.equal(response.status, 200, response.body);
    assert.ok(response.body.startsWith("#!/bin/bash\n"));
    assert.equal(exportedValue(response.body, "LUNA_URL"), base, "a loopback client gets the Host header it used");
  });

  test("403 from another address", async () => {
    const response = await getFrom("127.0.0.3", `${base}/boot/install/node002`);
    assert.equal(response.status, 403);
    assert.match(JSON.parse(response.body).message, /127\.0\.0\.3 is not its provisioning address/);
  });
});
