import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { asc, eq } from "drizzle-orm";
import { DEFAULT_PARTSCRIPT, DEFAULT_POSTSCRIPT } from "../lib/bootstrap.ts";
import { bmcsetup, groupInterface, groupSecret, network, node, nodeGroup, osimage, osimageTag } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

type Fields = Record<string, unknown>;

async function groupRow(t: TestApp, name: string) {
  const [row] = await t.db.orm.select().from(nodeGroup).where(eq(nodeGroup.name, name));
  return row;
}

async function storedInterfaces(t: TestApp, groupName: string) {
  return t.db.orm
    .select({ interface: groupInterface.interface, network: network.name, mtu: groupInterface.mtu })
    .from(groupInterface)
    .innerJoin(nodeGroup, eq(nodeGroup.id, groupInterface.group_id))
    .leftJoin(network, eq(network.id, groupInterface.network_id))
    .where(eq(nodeGroup.name, groupName))
    .orderBy(asc(groupInterface.interface));
}

function postGroup(t: TestApp, name: string, fields: Fields, suffix = "") {
  return t.request(`/config/group/${encodeURIComponent(name)}${suffix}`, { method: "POST", json: { config: { group: { [name]: fields } } } });
}

describe("GET /config/group", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("list shows plain values without markers", async () => {
    const response = await t.request("/config/group");
    assert.equal(response.status, 200);
    const body = await response.json();
    const group = body.config.group["compute-group"];
    assert.deepEqual(Object.keys(body.config.group), ["compute-group"]);
    assert.equal(group.osimage, "compute-image");
    assert.equal(group.bmcsetupname, "default-bmcsetup");
    assert.equal(group.setupbmc, true);
    assert.equal(group.kerneloptions, "net.ifnames=0 biosdevname=0");
    assert.deepEqual(group.interfaces, [
      { interface: "BMC", network: "ipmi" },
      { interface: "BOOTIF", network: "cluster" },
    ]);
    assert.deepEqual(Object.keys(group).filter((key) => key.startsWith("_")), []);
  });

  test("empty list is 200", async () => {
    const empty = await createTestApp({ bootstrap: false });
    try {
      const response = await empty.request("/config/group");
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { config: { group: {} } });
    } finally {
      await empty.close();
    }
  });
});

describe("GET /config/group/{name}", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  const expected: [string, unknown, string][] = [
    ["setupbmc", "True", "group"],
    ["netboot", "True", "group"],
    ["bootmenu", "False", "group"],
    ["kerneloptions", "net.ifnames=0 biosdevname=0", "osimage"],
    ["ipxe_kernel", "default", "default"],
    ["provision_interface", "BOOTIF", "default"],
    ["provision_method", "http", "cluster"],
    ["provision_fallback", "http", "cluster"],
    ["unmanaged_bmc_users", null, "default"],
    ["prescript", "", "default"],
    ["partscript", DEFAULT_PARTSCRIPT, "group"],
    ["postscript", DEFAULT_POSTSCRIPT, "group"],
    ["osimage", "compute-image", "group"],
    ["bmcsetupname", "default-bmcsetup", "group"],
    ["osimagetag", "default", "default"],
  ];
  for (const [key, value, source] of expected) {
    test(`single shows ${key} from ${source}`, async () => {
      const { config } = await (await t.request("/config/group/compute-group")).json();
      const group = config.group["compute-group"];
      assert.deepEqual(group[key], value);
      assert.equal(group[`_${key}_source`], source);
    });
  }

  test("every source marker has its field", async () => {
    const { config } = await (await t.request("/config/group/compute-group")).json();
    const group = config.group["compute-group"];
    const markers = Object.keys(group).filter((key) => /^_.+_source$/.test(key));
    assert.ok(markers.length >= expected.length);
    for (const marker of markers) assert.ok(marker.slice(1, -"_source".length) in group, `${marker} has no field`);
  });

  test("override follows own kernel value", async () => {
    const before = (await (await t.request("/config/group/compute-group")).json()).config.group["compute-group"];
    assert.equal(before._override, false);
    assert.equal((await postGroup(t, "compute-group", { kerneloptions: "quiet" })).status, 204);
    const after = (await (await t.request("/config/group/compute-group")).json()).config.group["compute-group"];
    assert.equal(after._override, true);
    assert.equal(after.kerneloptions, "quiet");
    assert.equal(after._kerneloptions_source, "group");
  });

  test("unmanaged_bmc_users comes from the BMC setup", async () => {
    await t.db.orm.update(bmcsetup).set({ unmanaged_bmc_users: "disable" });
    const group = (await (await t.request("/config/group/compute-group")).json()).config.group["compute-group"];
    assert.equal(group.unmanaged_bmc_users, "disable");
    assert.equal(group._unmanaged_bmc_users_source, "bmcsetup");
  });

  const missing: [string, string, number, RegExp][] = [
    ["unknown group", "nosuch", 404, /Group "nosuch" does not exist/],
    ["reserved name", "default", 400, /group name "default" is a reserved word/],
    ["invalid name", "bad!name", 400, /group name "bad!name" is invalid/],
  ];
  for (const [label, name, status, message] of missing) {
    test(`single rejects ${label} with ${status}`, async () => {
      const response = await t.request(`/config/group/${encodeURIComponent(name)}`);
      assert.equal(response.status, status);
      assert.match((await response.json()).message, message);
    });
  }
});

describe("POST /config/group/{name} create", () => {
  let t: TestApp;
  beforeEach(async () => {
    await t?.close();
    t = await createTestApp();
  });
  after(() => t.close());

  test("create stores defaults and BOOTIF", async () => {
    const response = await postGroup(t, "grp2", { name: "grp2" });
    assert.equal(response.status, 201);
    assert.match((await response.json()).message, /Group grp2 created/);
    const row = await groupRow(t, "grp2");
    assert.equal(row.prescript, "");
    assert.equal(row.partscript, DEFAULT_PARTSCRIPT);
    assert.equal(row.postscript, DEFAULT_POSTSCRIPT);
    assert.equal(row.setupbmc, false);
    assert.equal(row.netboot, true);
    assert.equal(row.bootmenu, false);
    assert.equal(row.ipxe_kernel, "default");
    assert.deepEqual(await storedInterfaces(t, "grp2"), [{ interface: "BOOTIF", network: "cluster", mtu: null }]);
  });

  test("create keeps sent BOOTIF", async () => {
    const response = await postGroup(t, "grp2", { interfaces: [{ interface: "BOOTIF", network: "ib", mtu: 9000 }, { interface: "BMC", network: "ipmi" }] });
    assert.equal(response.status, 201);
    assert.deepEqual(await storedInterfaces(t, "grp2"), [
      { interface: "BMC", network: "ipmi", mtu: null },
      { interface: "BOOTIF", network: "ib", mtu: "9000" },
    ]);
  });

  test("create resolves names and converts values", async () => {
    const response = await postGroup(t, "grp2", {
      bmcsetup: "default-bmcsetup",
      osimage: "compute-image",
      netboot: "no",
      bootmenu: "yes",
      roles: "default, raid1 raid1",
      ipxe_kernel: "Alternative",
      domain: "cluster",
      comment: "Y29tbWVudA==",
    });
    assert.equal(response.status, 201);
    const row = await groupRow(t, "grp2");
    const [setup] = await t.db.orm.select().from(bmcsetup);
    const [image] = await t.db.orm.select().from(osimage);
    assert.equal(row.bmcsetup_id, setup.id);
    assert.equal(row.setupbmc, true, "a BMC setup turns setupbmc on");
    assert.equal(row.osimage_id, image.id);
    assert.equal(row.netboot, false);
    assert.equal(row.bootmenu, true);
    assert.equal(row.roles, "default,raid1");
    assert.equal(row.ipxe_kernel, "alternative");
    assert.equal(row.domain, "cluster");
    assert.equal(row.comment, "Y29tbWVudA==");
  });

  const rejected: [string, Fields, number, RegExp][] = [
    ["setupbmc without a BMC setup", { setupbmc: true }, 400, /setupbmc of group "grp2" requires a BMC setup/],
    ["unknown BMC setup", { bmcsetupname: "nosuch" }, 400, /bmcsetupname "nosuch" does not exist/],
    ["two different BMC setup keys", { bmcsetupname: "default-bmcsetup", bmcsetup: "other" }, 400, /bmcsetupname "default-bmcsetup" and bmcsetup "other" differ/],
    ["unknown osimage", { osimage: "nosuch" }, 400, /osimage "nosuch" does not exist/],
    ["unknown osimagetag", { osimage: "compute-image", osimagetag: "v9" }, 400, /osimagetag "v9" is not a tag/],
    ["osimagetag without osimage", { osimagetag: "v1" }, 400, /osimagetag "v1" needs an osimage/],
    ["unknown key", { colour: "blue" }, 400, /unknown key "config\.group\.grp2\.colour"/],
    ["newgroupname on create", { newgroupname: "grp3" }, 400, /newgroupname is only allowed when renaming/],
    ["body name that differs", { name: "other" }, 400, /name "other" differs from "grp2"/],
    ["flag that is not a boolean", { netboot: "perhaps" }, 400, /netboot.*perhaps/],
    ["invalid ipxe_kernel", { ipxe_kernel: "fancy" }, 400, /ipxe_kernel/],
    ["unsupported provision_method", { provision_method: "torrent" }, 400, /provision_method/],
    ["invalid roles", { roles: "Bad;role" }, 400, /roles.*Bad;role/],
    ["interface without a network", { interfaces: [{ interface: "eth1" }] }, 400, /network is required for the new interface "eth1"/],
    ["interface on an unknown network", { interfaces: [{ interface: "eth1", network: "nosuch" }] }, 400, /network "nosuch" of interface "eth1" does not exist/],
  ];
  for (const [label, fields, status, message] of rejected) {
    test(`create rejects ${label} with ${status}`, async () => {
      const response = await postGroup(t, "grp2", fields);
      assert.equal(response.status, status);
      assert.match((await response.json()).message, message);
      assert.equal(await groupRow(t, "grp2"), undefined);
      assert.deepEqual(await storedInterfaces(t, "grp2"), []);
    });
  }

  test("create rejects an invalid URL name with 400", async () => {
    const response = await postGroup(t, "inventory", {});
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /group name "inventory" is a reserved word/);
  });
});

describe("POST /config/group/{name} update", () => {
  let t: TestApp;
  beforeEach(async () => {
    await t?.close();
    t = await createTestApp();
  });
  after(() => t.close());

  test("update stores fields and answers 204", async () => {
    const response = await postGroup(t, "compute-group", { name: "compute-group", comment: "racks 1-4", setupbmc: false, provision_interface: "eth0" });
    assert.equal(response.status, 204);
    const row = await groupRow(t, "compute-group");
    assert.equal(row.comment, "racks 1-4");
    assert.equal(row.setupbmc, false);
    assert.equal(row.provision_interface, "eth0");
  });

  test("update with empty strings clears fields", async () => {
    assert.equal((await postGroup(t, "compute-group", { bmcsetupname: "", setupbmc: false, osimage: "", domain: "" })).status, 204);
    const row = await groupRow(t, "compute-group");
    assert.equal(row.bmcsetup_id, null);
    assert.equal(row.osimage_id, null);
    assert.equal(row.domain, null);
  });

  test("update with osimage resets the tag", async () => {
    const [image] = await t.db.orm.select().from(osimage);
    const [tag] = await t.db.orm.insert(osimageTag).values({ osimage_id: image.id, name: "v1" }).returning();
    assert.equal((await postGroup(t, "compute-group", { osimagetag: "v1" })).status, 204);
    assert.equal((await groupRow(t, "compute-group")).osimagetag_id, tag.id);
    const view = (await (await t.request("/config/group/compute-group")).json()).config.group["compute-group"];
    assert.equal(view.osimagetag, "v1");
    assert.equal(view._osimagetag_source, "group");

    assert.equal((await postGroup(t, "compute-group", { osimage: "compute-image" })).status, 204);
    assert.equal((await groupRow(t, "compute-group")).osimagetag_id, null);
  });

  test("rename keeps members and interfaces", async () => {
    const before = await groupRow(t, "compute-group");
    const response = await postGroup(t, "compute-group", { newgroupname: "compute" });
    assert.equal(response.status, 204);
    assert.equal(await groupRow(t, "compute-group"), undefined);
    const renamed = await groupRow(t, "compute");
    assert.equal(renamed.id, before.id);
    const members = await t.db.orm.select().from(node).where(eq(node.group_id, before.id));
    assert.equal(members.length, 4);
    assert.equal((await storedInterfaces(t, "compute")).length, 2);
  });

  const rejected: [string, Fields, number, RegExp][] = [
    ["rename onto an existing group", { newgroupname: "other" }, 409, /Group "other" already exists/],
    ["invalid newgroupname", { newgroupname: "bad/name" }, 400, /newgroupname "bad\/name" is invalid/],
    ["setupbmc while clearing the BMC setup", { bmcsetupname: "" }, 400, /requires a BMC setup/],
    ["unknown key", { groupid: 3 }, 400, /unknown key "config\.group\.compute-group\.groupid"/],
  ];
  for (const [label, fields, status, message] of rejected) {
    test(`update rejects ${label} with ${status}`, async () => {
      await postGroup(t, "other", {});
      const before = await groupRow(t, "compute-group");
      const response = await postGroup(t, "compute-group", fields);
      assert.equal(response.status, status);
      assert.match((await response.json()).message, message);
      assert.deepEqual(await groupRow(t, "compute-group"), before);
    });
  }
});

describe("POST /config/group/{name}/_clone", () => {
  let t: TestApp;
  beforeEach(async () => {
    await t?.close();
    t = await createTestApp();
  });
  after(() => t.close());

  test("clone copies columns, interfaces and secrets", async () => {
    const source = await groupRow(t, "compute-group");
    await t.db.orm.insert(groupSecret).values({ group_id: source.id, name: "ssh-key", content: "v1:c2VjcmV0", path: "/root/.ssh/id" });
    const response = await postGroup(t, "compute-group", {
      name: "compute-group",
      newgroupname: "gpu-group",
      comment: "GPUs",
      interfaces: [{ interface: "BMC", network: "ib" }, { interface: "ib0", network: "ib" }],
    }, "/_clone");
    assert.equal(response.status, 201);
    assert.match((await response.json()).message, /Group compute-group cloned as gpu-group/);

    const clone = await groupRow(t, "gpu-group");
    const { id: _sourceId, name: _sourceName, comment: _sourceComment, ...sourceColumns } = source;
    const { id: cloneId, name: _cloneName, comment, ...cloneColumns } = clone;
    assert.deepEqual(cloneColumns, sourceColumns);
    assert.equal(comment, "GPUs");
    assert.deepEqual(await storedInterfaces(t, "gpu-group"), [
      { interface: "BMC", network: "ib", mtu: null },
      { interface: "BOOTIF", network: "cluster", mtu: null },
      { interface: "ib0", network: "ib", mtu: null },
    ]);
    const secrets = await t.db.orm.select().from(groupSecret).where(eq(groupSecret.group_id, cloneId));
    assert.deepEqual(secrets.map(({ name, content, path }) => ({ name, content, path })), [
      { name: "ssh-key", content: "v1:c2VjcmV0", path: "/root/.ssh/id" },
    ]);
    assert.deepEqual(await storedInterfaces(t, "compute-group"), [
      { interface: "BMC", network: "ipmi", mtu: null },
      { interface: "BOOTIF", network: "cluster", mtu: null },
    ]);
    assert.equal((await t.db.orm.select().from(node).where(eq(node.group_id, cloneId))).length, 0);
  });

  const rejected: [string, string, Fields, number, RegExp][] = [
    ["missing newgroupname", "compute-group", {}, 400, /missing key "config\.group\.compute-group\.newgroupname"/],
    ["existing target", "compute-group", { newgroupname: "compute-group" }, 409, /Group "compute-group" already exists/],
    ["unknown source", "nosuch", { newgroupname: "copy" }, 404, /Group "nosuch" does not exist/],
    ["reserved target", "compute-group", { newgroupname: "default" }, 400, /newgroupname "default" is a reserved word/],
    ["unknown osimage", "compute-group", { newgroupname: "copy", osimage: "nosuch" }, 400, /osimage "nosuch" does not exist/],
  ];
  for (const [label, source, fields, status, message] of rejected) {
    test(`clone rejects ${label} with ${status}`, async () => {
      const before = await t.db.orm.select().from(nodeGroup);
      const response = await postGroup(t, source, fields, "/_clone");
      assert.equal(response.status, status);
      assert.match((await response.json()).message, message);
      assert.deepEqual(await t.db.orm.select().from(nodeGroup), before);
    });
  }
});

describe("GET /config/group/{name}/_delete and _member", () => {
  let t: TestApp;
  beforeEach(async () => {
    await t?.close();
    t = await createTestApp();
  });
  after(() => t.close());

  test("delete rejected while nodes are members", async () => {
    const response = await t.request("/config/group/compute-group/_delete");
    assert.equal(response.status, 409);
    assert.equal(
      (await response.json()).message,
      'Cannot delete group "compute-group": 4 nodes still use it: node001, node002, node003, node004',
    );
    assert.ok(await groupRow(t, "compute-group"));
    assert.equal((await storedInterfaces(t, "compute-group")).length, 2);
  });

  test("delete rejection names ten members", async () => {
    const group = await groupRow(t, "compute-group");
    for (let index = 5; index <= 12; index++) {
      await t.db.orm.insert(node).values({ name: `node${String(index).padStart(3, "0")}`, group_id: group.id });
    }
    const { message } = await (await t.request("/config/group/compute-group/_delete")).json();
    assert.equal(
      message,
      'Cannot delete group "compute-group": 12 nodes still use it: node001, node002, node003, node004, node005, node006, node007, node008, node009, node010, ...',
    );
  });

  test("delete removes empty group", async () => {
    assert.equal((await postGroup(t, "grp2", { interfaces: [{ interface: "BMC", network: "ipmi" }] })).status, 201);
    const group = await groupRow(t, "grp2");
    await t.db.orm.insert(groupSecret).values({ group_id: group.id, name: "token", content: "v1:AAAA" });
    const response = await t.request("/config/group/grp2/_delete");
    assert.equal(response.status, 204);
    assert.equal(await groupRow(t, "grp2"), undefined);
    assert.deepEqual(await t.db.orm.select().from(groupInterface).where(eq(groupInterface.group_id, group.id)), []);
    assert.deepEqual(await t.db.orm.select().from(groupSecret).where(eq(groupSecret.group_id, group.id)), []);
  });

  test("delete of an unknown group is 404", async () => {
    const response = await t.request("/config/group/nosuch/_delete");
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /Group "nosuch" does not exist/);
  });

  test("member lists the nodes of a group", async () => {
    const response = await t.request("/config/group/compute-group/_member");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      config: { group: { "compute-group": { members: ["node001", "node002", "node003", "node004"] } } },
    });
  });

  test("member of empty group is empty", async () => {
    await postGroup(t, "grp2", {});
    const response = await t.request("/config/group/grp2/_member");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { config: { group: { grp2: { members: [] } } } });
  });

  test("member of an unknown group is 404", async () => {
    assert.equal((await t.request("/config/group/nosuch/_member")).status, 404);
  });
});
