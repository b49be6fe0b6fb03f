import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { serve, type ServerType } from "@hono/node-server";
import { eq } from "drizzle-orm";
import { discoverNode, nextNodeName } from "../lib/discovery.ts";
import { syncNodeWithGroup } from "../lib/node-interfaces.ts";
import { cluster, ipAddress, node, nodeGroup, nodeInterface, osimage } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

function macOf(index: number): string {
  return `52:54:00:aa:${(index >> 8).toString(16).padStart(2, "0")}:${(index & 0xff).toString(16).padStart(2, "0")}`;
}

async function prepare(t: TestApp, extraFreeNodes: number): Promise<void> {
  await t.db.write(async (tx) => {
    await tx.update(cluster).set({ nextnode_discover: true, createnode_ondemand: true }).where(eq(cluster.id, 1));
    await tx.update(osimage).set({ kernelfile: "vmlinuz", initrdfile: "initramfs", imagefile: "image.tar.zst" });
    const [group] = await tx.select().from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
    for (let index = 0; index < extraFreeNodes; index++) {
      const [created] = await tx.insert(node).values({ name: `free${String(index).padStart(3, "0")}`, group_id: group.id }).returning();
      await syncNodeWithGroup(tx, created.id, 0);
    }
  });
}

function kernelNode(script: string): string | undefined {
  return /luna\.node=(\S+)/.exec(script)?.[1];
}

describe("discovery over a real listener", () => {
  let t: TestApp;
  let server: ServerType;
  let base: string;
  before(async () => {
    t = await createTestApp();
    // 4 bootstrap nodes and 20 more are free; the other 26 of 50 machines get new nodes.
    await prepare(t, 20);
    server = serve({ fetch: t.app.fetch, hostname: "127.0.0.1", port: 0 });
    await new Promise((resolve) => server.once("listening", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await t.close();
  });

  async function bootAll(macs: string[]): Promise<Map<string, string>> {
    const responses = await Promise.all(macs.map(async (mac) => {
      const response = await fetch(`${base}/boot/search/mac/${mac}`, { signal: AbortSignal.timeout(30_000) });
      return { mac, status: response.status, script: await response.text() };
    }));
    const byMac = new Map<string, string>();
    for (const item of responses) {
      assert.equal(item.status, 200, `${item.mac}: ${item.script.slice(0, 300)}`);
      const name = kernelNode(item.script);
      assert.ok(name, `${item.mac} got a node`);
      byMac.set(item.mac, name);
    }
    return byMac;
  }

  test("50 concurrent unknown MACs get 50 nodes", async () => {
    const macs = Array.from({ length: 50 }, (_, index) => macOf(index));
    const first = await bootAll(macs);
    assert.equal(new Set(first.values()).size, 50, "no node was handed out twice");

    const stored = await t.db.orm
      .select({ mac: nodeInterface.macaddress, name: node.name, interface: nodeInterface.interface })
      .from(nodeInterface)
      .innerJoin(node, eq(node.id, nodeInterface.node_id));
    const withMac = stored.filter((row) => row.mac !== null);
    assert.equal(withMac.length, 50);
    for (const row of withMac) {
      assert.equal(row.interface, "BOOTIF");
      assert.equal(first.get(row.mac!), row.name, `stored owner of ${row.mac}`);
    }
    assert.equal((await t.db.orm.select({ id: node.id }).from(node)).length, 50, "24 reused and 26 created");
    const addresses = await t.db.orm.select({ ip: ipAddress.ipaddress }).from(ipAddress);
    const ips = addresses.map((row) => row.ip).filter((ip) => ip !== null);
    assert.equal(new Set(ips).size, ips.length, "no address was given twice");

    const second = await bootAll([...macs].reverse());
    assert.deepEqual(new Map([...second].sort()), new Map([...first].sort()), "repeated requests get the same nodes");
    assert.equal((await t.db.orm.select({ id: node.id }).from(node)).length, 50);
  });

  test("one MAC asking 10 times at once gets one node", async () => {
    const mac = macOf(999);
    const result = await bootAll(Array.from({ length: 10 }, () => mac));
    assert.equal(result.size, 1);
    const rows = await t.db.orm.select({ id: nodeInterface.id }).from(nodeInterface).where(eq(nodeInterface.macaddress, mac));
    assert.equal(rows.length, 1);
  });
});

describe("discoverNode order", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
    await prepare(t, 0);
  });
  afterEach(() => t.close());

  async function idOf(name: string): Promise<number> {
    const [row] = await t.db.orm.select({ id: node.id }).from(node).where(eq(node.name, name));
    return row.id;
  }

  test("switch port wins over the next free node", async () => {
    const target = await idOf("node003");
    const asked: string[] = [];
    const found = await discoverNode(t.db, "52:54:00:00:00:01", 0, (mac) => {
      asked.push(mac);
      return Promise.resolve(target);
    });
    assert.deepEqual(asked, ["52:54:00:00:00:01"]);
    assert.deepEqual(found, { nodeId: target, name: "node003", outcome: "switchport" });
  });

  test("switch port miss falls back to the next free node", async () => {
    const found = await discoverNode(t.db, "52:54:00:00:00:02", 0, () => Promise.resolve(null));
    assert.equal(found?.name, "node001");
    assert.equal(found?.outcome, "nextnode");
  });

  test("switch port works without nextnode_discover", async () => {
    await t.db.write((tx) => tx.update(cluster).set({ nextnode_discover: false }));
    const target = await idOf("node002");
    const found = await discoverNode(t.db, "52:54:00:00:00:03", 0, () => Promise.resolve(target));
    assert.equal(found?.name, "node002");
    assert.equal(await discoverNode(t.db, "52:54:00:00:00:04", 0, () => Promise.resolve(null)), null);
  });

  test("known MAC skips the switch lookup result", async () => {
    const first = await discoverNode(t.db, "52:54:00:00:00:05", 0);
    const second = await discoverNode(t.db, "52:54:00:00:00:05", 0, () => Promise.resolve(null));
    assert.equal(first?.name, "node001");
    assert.deepEqual(second, { nodeId: first!.nodeId, name: "node001", outcome: "known" });
  });

  const names: { existing: string[]; expected: string }[] = [
    { existing: ["node004"], expected: "node005" },
    { existing: ["node099"], expected: "node100" },
    { existing: ["node999"], expected: "node1000" },
    { existing: ["rack1-7"], expected: "rack1-8" },
    { existing: ["login"], expected: "login001" },
  ];
  for (const item of names) {
    test(`next name after ${item.existing.join(", ")}`, async () => {
      await t.db.write(async (tx) => {
        await tx.delete(node);
        const [group] = await tx.select().from(nodeGroup).limit(1);
        for (const name of item.existing) await tx.insert(node).values({ name, group_id: group.id });
        assert.equal(await nextNodeName(tx, "compute-group", "52:54:00:00:00:06", false), item.expected);
      });
    });
  }

  test("next name without nodes uses the group", async () => {
    await t.db.write(async (tx) => {
      await tx.delete(node);
      assert.equal(await nextNodeName(tx, "GPU Nodes", "52:54:00:00:00:07", false), "gpu-nodes001");
    });
  });
});
