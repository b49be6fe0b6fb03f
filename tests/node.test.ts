import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { ipAddress, node, nodeGroup, nodeInterface, nodeSecret, nodeStatus, osimage, osimageTag } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

function nodeBody(name: string, fields: Record<string, unknown>) {
  return { config: { node: { [name]: fields } } };
}

async function post(t: TestApp, path: string, body: unknown): Promise<Response> {
  return t.request(path, { method: "POST", json: body });
}

async function storedNode(t: TestApp, name: string) {
  const [row] = await t.db.orm.select().from(node).where(eq(node.name, name));
  return row;
}

async function storedAddresses(t: TestApp, name: string) {
  return t.db.orm
    .select({ interface: nodeInterface.interface, mac: nodeInterface.macaddress, ipaddress: ipAddress.ipaddress })
    .from(nodeInterface)
    .innerJoin(node, eq(node.id, nodeInterface.node_id))
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
    .where(eq(node.name, name))
    .orderBy(nodeInterface.id);
}

async function nodeView(t: TestApp, name: string): Promise<Record<string, unknown>> {
  const response = await t.request(`/config/node/${name}`);
  assert.equal(response.status, 200);
  return (await response.json()).config.node[name];
}

describe("POST /config/node/{name} create", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("creates a node with group interfaces", async () => {
    const response = await post(t, "/config/node/node005", nodeBody("node005", { name: "node005", group: "compute-group" }));
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { message: "Node node005 created successfully" });

    const row = await storedNode(t, "node005");
    const [group] = await t.db.orm.select().from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
    assert.equal(row.group_id, group.id);
    assert.equal(row.service, false);
    assert.deepEqual(await storedAddresses(t, "node005"), [
      { interface: "BOOTIF", mac: null, ipaddress: "10.141.0.5" },
      { interface: "BMC", mac: null, ipaddress: "10.148.0.5" },
    ]);

    const view = await nodeView(t, "node005");
    assert.equal(view.group, "compute-group");
    assert.equal(view.hostname, "node005.cluster");
    assert.deepEqual(view.interfaces, [
      { interface: "BOOTIF", ipaddress: "10.141.0.5", macaddress: null, network: "cluster" },
      { interface: "BMC", ipaddress: "10.148.0.5", macaddress: null, network: "ipmi" },
    ]);
  });

  test("applies fields, pseudo keys and interfaces on create", async () => {
    const response = await post(t, "/config/node/node006", nodeBody("node006", {
      group: "compute-group",
      osimage: "compute-image",
      switch: "switch01",
      switchport: "12",
      roles: "default, raid1",
      service: "yes",
      interfaces: [{ interface: "ib0", network: "ib" }],
    }));
    assert.equal(response.status, 201);
    const row = await storedNode(t, "node006");
    assert.equal(row.roles, "default,raid1");
    assert.equal(row.service, true);
    assert.equal(row.switchport, "12");
    assert.notEqual(row.osimage_id, null);
    assert.notEqual(row.switch_id, null);
    assert.deepEqual((await storedAddresses(t, "node006")).map((item) => [item.interface, item.ipaddress]), [
      ["BOOTIF", "10.141.0.6"],
      ["BMC", "10.148.0.6"],
      ["ib0", "10.149.0.1"],
    ]);
  });

  const errors: { title: string; name: string; body: unknown; status: number; pattern: RegExp }[] = [
    { title: "missing group", name: "node007", body: nodeBody("node007", { name: "node007" }), status: 400, pattern: /group name is required for new nodes/ },
    { title: "unknown group", name: "node007", body: nodeBody("node007", { group: "nogroup" }), status: 400, pattern: /group "nogroup" does not exist/ },
    { title: "newnodename on create", name: "node007", body: nodeBody("node007", { group: "compute-group", newnodename: "x" }), status: 400, pattern: /newnodename is only allowed/ },
    { title: "unknown key", name: "node001", body: nodeBody("node001", { bogus: 1 }), status: 400, pattern: /unknown key "config.node.node001.bogus"/ },
    { title: "other node in body", name: "node001", body: nodeBody("node002", {}), status: 400, pattern: /config.node.node001/ },
    { title: "invalid URL name", name: "Node001", body: nodeBody("Node001", { group: "compute-group" }), status: 400, pattern: /Node name "Node001" is invalid/ },
    { title: "reserved URL name", name: "default", body: nodeBody("default", { group: "compute-group" }), status: 400, pattern: /reserved word/ },
    { title: "unknown osimage", name: "node001", body: nodeBody("node001", { osimage: "none" }), status: 400, pattern: /osimage "none" does not exist/ },
    { title: "unknown switch", name: "node001", body: nodeBody("node001", { switch: "sw9" }), status: 400, pattern: /switch "sw9" does not exist/ },
    { title: "group cleared", name: "node001", body: nodeBody("node001", { group: "" }), status: 400, pattern: /group must name a group/ },
    { title: "bad flag", name: "node001", body: nodeBody("node001", { netboot: "maybe" }), status: 400, pattern: /netboot.*must be true or false/ },
    { title: "unsupported method", name: "node001", body: nodeBody("node001", { provision_method: "torrent" }), status: 400, pattern: /provision_method.*not supported/ },
    { title: "bad ipxe_kernel", name: "node001", body: nodeBody("node001", { ipxe_kernel: "other" }), status: 400, pattern: /ipxe_kernel.*default or alternative/ },
    { title: "bad roles", name: "node001", body: nodeBody("node001", { roles: "Role;x" }), status: 400, pattern: /roles/ },
    { title: "unknown tag", name: "node001", body: nodeBody("node001", { osimagetag: "v9" }), status: 400, pattern: /osimagetag "v9" is not a tag/ },
    { title: "name differs", name: "node001", body: nodeBody("node001", { name: "node002" }), status: 400, pattern: /use newnodename to rename/ },
  ];
  for (const item of errors) {
    test(`rejects ${item.title}`, async () => {
      const before = await t.db.orm.select({ id: node.id, comment: node.comment, osimage: node.osimage_id }).from(node);
      const response = await post(t, `/config/node/${item.name}`, item.body);
      assert.equal(response.status, item.status);
      assert.match((await response.json()).message, item.pattern);
      const afterRows = await t.db.orm.select({ id: node.id, comment: node.comment, osimage: node.osimage_id }).from(node);
      assert.deepEqual(afterRows, before);
    });
  }
});

describe("POST /config/node/{name} update and rename", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("updates fields with 204 and marks them as node values", async () => {
    const response = await post(t, "/config/node/node004", nodeBody("node004", { netboot: false, provision_method: "http", comment: "rack 4" }));
    assert.equal(response.status, 204);
    const row = await storedNode(t, "node004");
    assert.equal(row.netboot, false);
    assert.equal(row.provision_method, "http");
    assert.equal(row.comment, "rack 4");
    const view = await nodeView(t, "node004");
    assert.equal(view.netboot, "False");
    assert.equal(view._netboot_source, "node");
    assert.equal(view._provision_method_source, "node");
    assert.equal(view._override, true);
  });

  test("clears a field with an empty string", async () => {
    assert.equal((await post(t, "/config/node/node004", nodeBody("node004", { comment: "", netboot: "" }))).status, 204);
    const row = await storedNode(t, "node004");
    assert.equal(row.comment, null);
    assert.equal(row.netboot, null);
  });

  test("sets and clears an osimage tag", async () => {
    const [image] = await t.db.orm.select().from(osimage).where(eq(osimage.name, "compute-image"));
    const [tag] = await t.db.write((tx) => tx.insert(osimageTag).values({ osimage_id: image.id, name: "v1" }).returning());
    assert.equal((await post(t, "/config/node/node003", nodeBody("node003", { osimagetag: "v1" }))).status, 204);
    assert.equal((await storedNode(t, "node003")).osimagetag_id, tag.id);
    const view = await nodeView(t, "node003");
    assert.equal(view.osimagetag, "v1");
    assert.equal(view._osimagetag_source, "node");
    assert.equal((await post(t, "/config/node/node003", nodeBody("node003", { osimage: "compute-image" }))).status, 204);
    assert.equal((await storedNode(t, "node003")).osimagetag_id, null);
  });

  test("renames with newnodename", async () => {
    const before = await storedNode(t, "node004");
    const response = await post(t, "/config/node/node004", nodeBody("node004", { newnodename: "node044" }));
    assert.equal(response.status, 204);
    assert.equal(await storedNode(t, "node004"), undefined);
    assert.equal((await storedNode(t, "node044")).id, before.id);
    assert.equal((await nodeView(t, "node044")).hostname, "node044.cluster");
  });

  test("rejects a rename onto an existing node with 409", async () => {
    const response = await post(t, "/config/node/node044", nodeBody("node044", { newnodename: "node001" }));
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /Node "node001" already exists/);
    assert.notEqual(await storedNode(t, "node044"), undefined);
  });

  test("moves a node to another group and re-syncs interfaces", async () => {
    await t.db.write(async (tx) => {
      const [group] = await tx.insert(nodeGroup).values({ name: "gpu-group" }).returning();
      const { groupInterface, network } = await import("../lib/db/schema/index.ts");
      const [ib] = await tx.select().from(network).where(eq(network.name, "ib"));
      const [cluster] = await tx.select().from(network).where(eq(network.name, "cluster"));
      await tx.insert(groupInterface).values([
        { group_id: group.id, interface: "BOOTIF", network_id: cluster.id },
        { group_id: group.id, interface: "ib0", network_id: ib.id, mtu: "2044" },
      ]);
    });
    const response = await post(t, "/config/node/node002", nodeBody("node002", { group: "gpu-group" }));
    assert.equal(response.status, 204);
    assert.deepEqual(await storedAddresses(t, "node002"), [
      { interface: "BOOTIF", mac: null, ipaddress: "10.141.0.2" },
      { interface: "ib0", mac: null, ipaddress: "10.149.0.1" },
    ]);
    const [ib0] = await t.db.orm.select().from(nodeInterface).where(eq(nodeInterface.interface, "ib0"));
    assert.equal(ib0.mtu, "2044");
  });

  test("provision token may update its own node", async () => {
    const token = await t.services.tokens.issueProvision("node001");
    const response = await t.request("/config/node/node001", {
      method: "POST",
      headers: { "x-access-tokens": token },
      json: nodeBody("node001", { name: "node001", vendor: "Acme", assettag: "SN1" }),
    });
    assert.equal(response.status, 204);
    const row = await storedNode(t, "node001");
    assert.equal(row.vendor, "Acme");
    assert.equal(row.assettag, "SN1");
  });

  const tokenCases = [
    { title: "another node", path: "/config/node/node002", body: nodeBody("node002", { vendor: "x" }), status: 403 },
    { title: "a group change", path: "/config/node/node001", body: nodeBody("node001", { group: "gpu-group" }), status: 403 },
    { title: "the node list", path: "/config/node", body: undefined, status: 403 },
    { title: "a delete", path: "/config/node/node001/_delete", body: undefined, status: 403 },
  ];
  for (const item of tokenCases) {
    test(`provision token is rejected for ${item.title}`, async () => {
      const token = await t.services.tokens.issueProvision("node001");
      const init = item.body === undefined ? {} : { method: "POST", json: item.body };
      const response = await t.request(item.path, { ...init, headers: { "x-access-tokens": token } });
      assert.equal(response.status, item.status);
      assert.notEqual(await storedNode(t, "node001"), undefined);
      assert.notEqual((await storedNode(t, "node001")).group_id, undefined);
    });
  }
});

describe("GET /config/node/{name} inheritance markers", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    await t.db.write(async (tx) => {
      await tx.update(nodeGroup).set({ roles: "grouprole", kerneloptions: null }).where(eq(nodeGroup.name, "compute-group"));
    });
    await post(t, "/config/node/node001", nodeBody("node001", { scripts: "myscript", ipxe_kernel: "alternative" }));
  });
  after(() => t.close());

  const cases: { field: string; value: unknown; source: string }[] = [
    { field: "scripts", value: "myscript", source: "node" },
    { field: "ipxe_kernel", value: "alternative", source: "node" },
    { field: "roles", value: "grouprole", source: "group" },
    { field: "netboot", value: "True", source: "group" },
    { field: "kerneloptions", value: "net.ifnames=0 biosdevname=0", source: "osimage" },
    { field: "provision_method", value: "http", source: "cluster" },
    { field: "provision_interface", value: "BOOTIF", source: "default" },
    { field: "prescript", value: "", source: "default" },
    { field: "osimage", value: "compute-image", source: "group" },
    { field: "bmcsetup", value: "default-bmcsetup", source: "group" },
    { field: "osimagetag", value: "default", source: "default" },
    { field: "unmanaged_bmc_users", value: null, source: "default" },
  ];
  for (const item of cases) {
    test(`${item.field} comes from ${item.source}`, async () => {
      const view = await nodeView(t, "node001");
      assert.deepEqual(view[item.field], item.value);
      assert.equal(view[`_${item.field}_source`], item.source);
    });
  }

  test("node value sets _override", async () => {
    assert.equal((await nodeView(t, "node001"))._override, true);
    assert.equal((await nodeView(t, "node002"))._override, false);
  });

  test("every marker has its field", async () => {
    const view = await nodeView(t, "node001");
    for (const key of Object.keys(view)) {
      const match = /^_(.+)_source$/.exec(key);
      if (match) assert.ok(match[1] in view, `marker ${key} has no field ${match[1]}`);
    }
  });

  test("provision_fallback comes from default when the cluster has none", async () => {
    const { cluster } = await import("../lib/db/schema/index.ts");
    await t.db.write((tx) => tx.update(cluster).set({ provision_fallback: null }).where(eq(cluster.id, 1)));
    const view = await nodeView(t, "node002");
    assert.equal(view.provision_fallback, "http");
    assert.equal(view._provision_fallback_source, "default");
  });

  test("status shows the installer state", async () => {
    const row = await storedNode(t, "node002");
    await t.db.write((tx) => tx.insert(nodeStatus).values({ node_id: row.id, state: "install.success", updated: t.clock.now() }));
    assert.equal((await nodeView(t, "node002")).status, "Luna installer: success");
  });

  test("list has plain values and no markers", async () => {
    const response = await t.request("/config/node");
    assert.equal(response.status, 200);
    const nodes = (await response.json()).config.node;
    assert.deepEqual(Object.keys(nodes), ["node001", "node002", "node003", "node004"]);
    assert.equal(nodes.node001.netboot, true);
    assert.equal(nodes.node001.scripts, "myscript");
    assert.equal(nodes.node002.status, "Luna installer: success");
    assert.equal(nodes.node003.interfaces.length, 2);
    assert.equal(Object.keys(nodes.node001).some((key) => key.endsWith("_source")), false);
  });

  test("unknown node is 404", async () => {
    const response = await t.request("/config/node/node099");
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /Node "node099" does not exist/);
  });
});

describe("POST /config/node/{name}/_clone and GET _delete", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    await post(t, "/config/node/node001/interfaces", nodeBody("node001", { interfaces: [{ interface: "BOOTIF", macaddress: "aa:bb:cc:dd:ee:01" }] }));
    const row = await storedNode(t, "node001");
    await t.db.write(async (tx) => {
      await tx.insert(nodeSecret).values({ node_id: row.id, name: "sshkey", content: "CIPHERTEXT==", path: "/root/.ssh/id" });
      await tx.insert(nodeStatus).values({ node_id: row.id, state: "install.success", updated: 1 });
    });
    await post(t, "/config/node/node001", nodeBody("node001", { comment: "source", tpm_sha256: "abc" }));
  });
  after(() => t.close());

  test("clones columns, secrets and interfaces without MAC", async () => {
    const response = await post(t, "/config/node/node001/_clone", nodeBody("node001", { newnodename: "node010", vendor: "Acme" }));
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { message: "Node node010 created successfully" });
    const row = await storedNode(t, "node010");
    assert.equal(row.comment, "source");
    assert.equal(row.vendor, "Acme");
    assert.equal(row.tpm_sha256, null);
    assert.deepEqual(await storedAddresses(t, "node010"), [
      { interface: "BOOTIF", mac: null, ipaddress: "10.141.0.5" },
      { interface: "BMC", mac: null, ipaddress: "10.148.0.5" },
    ]);
    const secrets = await t.db.orm.select().from(nodeSecret).where(eq(nodeSecret.node_id, row.id));
    assert.deepEqual(secrets.map((item) => [item.name, item.content, item.path]), [["sshkey", "CIPHERTEXT==", "/root/.ssh/id"]]);
    const status = await t.db.orm.select().from(nodeStatus).where(eq(nodeStatus.node_id, row.id));
    assert.equal(status.length, 0);
  });

  const errors = [
    { title: "missing newnodename", source: "node001", fields: {}, status: 400, pattern: /newnodename is required/ },
    { title: "unknown source", source: "node099", fields: { newnodename: "node011" }, status: 404, pattern: /Node "node099" does not exist/ },
    { title: "existing target", source: "node001", fields: { newnodename: "node002" }, status: 409, pattern: /Node "node002" already exists/ },
    { title: "invalid target name", source: "node001", fields: { newnodename: "Bad_Name" }, status: 400, pattern: /newnodename "Bad_Name" is invalid/ },
  ];
  for (const item of errors) {
    test(`clone rejects ${item.title}`, async () => {
      const count = (await t.db.orm.select().from(node)).length;
      const response = await post(t, `/config/node/${item.source}/_clone`, nodeBody(item.source, item.fields));
      assert.equal(response.status, item.status);
      assert.match((await response.json()).message, item.pattern);
      assert.equal((await t.db.orm.select().from(node)).length, count);
    });
  }

  test("delete removes node, interfaces, addresses, secrets and status", async () => {
    const row = await storedNode(t, "node001");
    const response = await t.request("/config/node/node001/_delete");
    assert.equal(response.status, 204);
    assert.equal(await storedNode(t, "node001"), undefined);
    assert.equal((await t.db.orm.select().from(nodeInterface).where(eq(nodeInterface.node_id, row.id))).length, 0);
    assert.equal((await t.db.orm.select().from(nodeSecret).where(eq(nodeSecret.node_id, row.id))).length, 0);
    assert.equal((await t.db.orm.select().from(nodeStatus).where(eq(nodeStatus.node_id, row.id))).length, 0);
    assert.equal((await t.db.orm.select().from(ipAddress).where(eq(ipAddress.ipaddress, "10.141.0.1"))).length, 0);
  });

  test("delete of a missing node is 404", async () => {
    const response = await t.request("/config/node/node001/_delete");
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /Node "node001" does not exist/);
  });
});
