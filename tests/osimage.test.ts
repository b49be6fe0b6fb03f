import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { DEFAULT_GRAB_EXCLUDE, DEFAULT_GRAB_FILESYSTEMS, DEFAULT_KERNEL_MODULES } from "../lib/bootstrap.ts";
import { node, nodeGroup, osimage, osimageTag } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

function envelope(name: string, fields: Record<string, unknown>) {
  return { config: { osimage: { [name]: fields } } };
}

async function storedImage(t: TestApp, name: string) {
  const [row] = await t.db.orm.select().from(osimage).where(eq(osimage.name, name));
  return row;
}

async function storedTags(t: TestApp, image: string) {
  const row = await storedImage(t, image);
  return t.db.orm.select().from(osimageTag).where(eq(osimageTag.osimage_id, row.id)).orderBy(osimageTag.name);
}

function post(t: TestApp, path: string, json: unknown) {
  return t.request(path, { method: "POST", json });
}

const decode = (value: string) => Buffer.from(value, "base64").toString("utf8");

describe("osimage routes", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("list returns plain values and the default tag", async () => {
    const response = await t.request("/config/osimage");
    assert.equal(response.status, 200);
    const image = (await response.json()).config.osimage["compute-image"];
    assert.equal(image.grab_filesystems, DEFAULT_GRAB_FILESYSTEMS);
    assert.equal(image.kerneloptions, "net.ifnames=0 biosdevname=0");
    assert.equal(image.tag, "default");
    assert.equal("id" in image, false);
    assert.equal("changed" in image, false);
  });

  test("show base64-encodes the editor fields", async () => {
    const response = await t.request("/config/osimage/compute-image");
    assert.equal(response.status, 200);
    const image = (await response.json()).config.osimage["compute-image"];
    assert.equal(decode(image.grab_filesystems), DEFAULT_GRAB_FILESYSTEMS);
    assert.equal(decode(image.grab_exclude), DEFAULT_GRAB_EXCLUDE);
    assert.equal(decode(image.kerneloptions), "net.ifnames=0 biosdevname=0");
    assert.equal(image.kernelmodules, DEFAULT_KERNEL_MODULES);
    assert.equal("assigned_tags" in image, false);
  });

  test("create applies the default grab lists", async () => {
    const response = await post(t, "/config/osimage/img-a", envelope("img-a", { name: "img-a", distribution: "ubuntu", kernelversion: "6.8.0" }));
    assert.equal(response.status, 201);
    assert.match((await response.json()).message, /img-a created/);
    const row = await storedImage(t, "img-a");
    assert.equal(row.grab_filesystems, DEFAULT_GRAB_FILESYSTEMS);
    assert.equal(row.grab_exclude, DEFAULT_GRAB_EXCLUDE);
    assert.equal(row.kernelmodules, DEFAULT_KERNEL_MODULES);
    assert.equal(row.distribution, "ubuntu");
    assert.equal(row.kernelversion, "6.8.0");
    assert.equal(row.path, null);
  });

  test("show computes the path under the image directory", async () => {
    const image = (await (await t.request("/config/osimage/img-a")).json()).config.osimage["img-a"];
    assert.equal(image.path, join(t.config.files.imageDirectory, "img-a"));
  });

  test("update stores fields and clears with empty values", async () => {
    const response = await post(t, "/config/osimage/img-a", envelope("img-a", { kerneloptions: "quiet\nsplash", comment: "test", distribution: "" }));
    assert.equal(response.status, 204);
    const row = await storedImage(t, "img-a");
    assert.equal(row.kerneloptions, "quiet\nsplash");
    assert.equal(row.comment, "test");
    assert.equal(row.distribution, null);
  });

  const invalidBodies: [string, Record<string, unknown>, RegExp][] = [
    ["unknown key", { dracutmodules: "x" }, /unknown key "config.osimage.img-a.dracutmodules"/],
    ["kernel file with a directory", { kernelfile: "../etc/passwd" }, /kernelfile/],
    ["tag with a slash", { tag: "a/b" }, /tag "a\/b" is invalid/],
    ["reserved new name", { newosimage: "default" }, /reserved/],
    ["other body name", { name: "img-b" }, /newosimage/],
    ["control character", { comment: "a\u0001" }, /comment/],
  ];
  for (const [label, fields, pattern] of invalidBodies) {
    test(`update rejects ${label} with 400`, async () => {
      const before = await storedImage(t, "img-a");
      const response = await post(t, "/config/osimage/img-a", envelope("img-a", fields));
      assert.equal(response.status, 400);
      assert.match((await response.json()).message, pattern);
      assert.deepEqual(await storedImage(t, "img-a"), before);
    });
  }

  test("body for another image is 400", async () => {
    const response = await post(t, "/config/osimage/img-a", envelope("img-b", {}));
    assert.equal(response.status, 400);
    assert.equal(await storedImage(t, "img-b"), undefined);
  });

  test("invalid path name is 400", async () => {
    const response = await t.request("/config/osimage/bad%21name");
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /"bad!name" is invalid/);
  });

  test("show of an unknown image is 404", async () => {
    const response = await t.request("/config/osimage/nothere");
    assert.equal(response.status, 404);
  });

  test("tag key creates a snapshot tag and activates it", async () => {
    await post(t, "/config/osimage/img-a", envelope("img-a", { kernelfile: "k1", initrdfile: "i1", imagefile: "f1" }));
    const response = await post(t, "/config/osimage/img-a", envelope("img-a", { tag: "v1" }));
    assert.equal(response.status, 204);
    const [tag] = await storedTags(t, "img-a");
    assert.equal(tag.name, "v1");
    assert.equal(tag.kernelfile, "k1");
    assert.equal(tag.initrdfile, "i1");
    assert.equal(tag.imagefile, "f1");
    assert.equal(tag.kerneloptions, "quiet\nsplash");
    assert.equal((await storedImage(t, "img-a")).tag_id, tag.id);

    const shown = (await (await t.request("/config/osimage/img-a")).json()).config.osimage["img-a"];
    assert.equal(shown.tag, "v1");
    assert.equal(shown.assigned_tags, "v1");
  });

  test("tag route activates a second tag", async () => {
    await post(t, "/config/osimage/img-a", envelope("img-a", { kernelfile: "k2" }));
    const response = await post(t, "/config/osimage/img-a/tag", envelope("img-a", { tag: "v2" }));
    assert.equal(response.status, 204);
    const tags = await storedTags(t, "img-a");
    assert.deepEqual(tags.map((tag) => [tag.name, tag.kernelfile]), [["v1", "k1"], ["v2", "k2"]]);
    assert.equal((await storedImage(t, "img-a")).tag_id, tags[1].id);
  });

  test("tag route reuses an existing tag", async () => {
    const response = await post(t, "/config/osimage/img-a/tag", envelope("img-a", { tag: "v1" }));
    assert.equal(response.status, 204);
    const tags = await storedTags(t, "img-a");
    assert.equal(tags.length, 2);
    assert.equal((await storedImage(t, "img-a")).tag_id, tags[0].id);
  });

  test("tag route with an empty tag clears it", async () => {
    const response = await post(t, "/config/osimage/img-a/tag", envelope("img-a", { tag: "" }));
    assert.equal(response.status, 204);
    assert.equal((await storedImage(t, "img-a")).tag_id, null);
    assert.equal((await storedTags(t, "img-a")).length, 2);
  });

  const tagErrors: [string, string, unknown, number][] = [
    ["missing tag", "img-a", envelope("img-a", {}), 400],
    ["unknown image", "img-none", envelope("img-none", { tag: "x" }), 404],
    ["invalid tag", "img-a", envelope("img-a", { tag: "-x" }), 400],
  ];
  for (const [label, image, body, status] of tagErrors) {
    test(`tag route with ${label} is ${status}`, async () => {
      const response = await post(t, `/config/osimage/${image}/tag`, body);
      assert.equal(response.status, status);
      assert.equal((await storedTags(t, "img-a")).length, 2);
    });
  }

  test("osimagetag list of one image shows nodes set to a tag", async () => {
    const [v1] = await storedTags(t, "img-a");
    await t.db.write((tx) => tx.update(node).set({ osimagetag_id: v1.id }).where(eq(node.name, "node003")));
    const response = await t.request("/config/osimagetag/img-a");
    assert.equal(response.status, 200);
    const tags = (await response.json()).config.osimagetag;
    assert.deepEqual(Object.keys(tags), ["v1", "v2"]);
    assert.equal(tags.v1.osimage, "img-a");
    assert.equal(tags.v1.kernelfile, "k1");
    assert.equal(tags.v1.nodes, "node003");
    assert.equal("nodes" in tags.v2, false);
    assert.equal(tags.v1.path, join(t.config.files.imageDirectory, "img-a"));
  });

  test("osimagetag list of all images keeps repeated tag names", async () => {
    await post(t, "/config/osimage/compute-image/tag", envelope("compute-image", { tag: "v1" }));
    const response = await t.request("/config/osimagetag");
    assert.equal(response.status, 200);
    const tags = (await response.json()).config.osimagetag;
    assert.deepEqual(Object.keys(tags).sort(), ["img-a/v1", "v1", "v2"]);
    assert.equal(tags.v1.osimage, "compute-image");
    assert.equal(tags["img-a/v1"].osimage, "img-a");
  });

  test("osimagetag of an image without tags is 404", async () => {
    const response = await t.request("/config/osimagetag/img-a-none");
    assert.equal(response.status, 404);
  });

  test("tag delete refuses a tag a node is set to", async () => {
    const response = await t.request("/config/osimage/img-a/osimagetag/v1/_delete");
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /1 node \(node003\)/);
    assert.equal((await storedTags(t, "img-a")).length, 2);
  });

  test("tag delete removes the active tag and clears it", async () => {
    await post(t, "/config/osimage/img-a/tag", envelope("img-a", { tag: "v2" }));
    const response = await t.request("/config/osimage/img-a/osimagetag/v2/_delete");
    assert.equal(response.status, 204);
    assert.deepEqual((await storedTags(t, "img-a")).map((tag) => tag.name), ["v1"]);
    assert.equal((await storedImage(t, "img-a")).tag_id, null);
  });

  test("tag delete of an unknown tag is 404", async () => {
    const response = await t.request("/config/osimage/img-a/osimagetag/v9/_delete");
    assert.equal(response.status, 404);
  });

  test("rename without a body name pins the old path", async () => {
    const response = await post(t, "/config/osimage/img-a", envelope("img-a", { newosimage: "img-renamed" }));
    assert.equal(response.status, 204);
    assert.equal(await storedImage(t, "img-a"), undefined);
    const row = await storedImage(t, "img-renamed");
    assert.equal(row.changed, true);
    assert.equal(row.path, join(t.config.files.imageDirectory, "img-a"));
    assert.equal((await storedTags(t, "img-renamed")).length, 1);
  });

  test("rename onto an existing name is 409", async () => {
    const response = await post(t, "/config/osimage/img-renamed", envelope("img-renamed", { name: "img-renamed", newosimage: "compute-image" }));
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /"compute-image" already exists/);
    assert.ok(await storedImage(t, "img-renamed"));
  });

  test("newosimage on a missing image is 400", async () => {
    const response = await post(t, "/config/osimage/img-ghost", envelope("img-ghost", { newosimage: "img-x" }));
    assert.equal(response.status, 400);
    assert.equal(await storedImage(t, "img-x"), undefined);
    assert.equal(await storedImage(t, "img-ghost"), undefined);
  });

  test("clone with nocopy copies the listed columns", async () => {
    await post(t, "/config/osimage/compute-image", envelope("compute-image", { kernelversion: "5.14", osrelease: "9", kernelfile: "kf", comment: "source" }));
    const response = await post(t, "/config/osimage/compute-image/_clone", envelope("compute-image", { newosimage: "img-clone", nocopy: true, osrelease: "10" }));
    assert.equal(response.status, 201);
    assert.match((await response.json()).message, /cloned as img-clone/);
    const source = await storedImage(t, "compute-image");
    const copy = await storedImage(t, "img-clone");
    assert.equal(copy.kernelversion, "5.14");
    assert.equal(copy.kernelfile, "kf");
    assert.equal(copy.grab_exclude, source.grab_exclude);
    assert.equal(copy.kerneloptions, source.kerneloptions);
    assert.equal(copy.osrelease, "10");
    assert.equal(copy.comment, null);
    assert.equal(copy.path, null);
    assert.equal(copy.tag_id, null);
  });

  test("clone without nocopy creates the row and queues the copy", async () => {
    const response = await post(t, "/config/osimage/compute-image/_clone", envelope("compute-image", { name: "compute-image", newosimage: "img-clone2" }));
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.message, "osimage clone for img-clone2 queued");
    assert.equal(typeof body.request_id, "string");
    assert.ok(await storedImage(t, "img-clone2"));
    // The source has no directory here, so the copy job fails and removes the clone again.
    // Waiting for it lets later tests count a settled table. tests/osimage-copy.test.ts covers copies.
    for (let attempt = 0; attempt < 500 && (await t.request(`/config/status/${body.request_id}`)).status !== 404; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(await storedImage(t, "img-clone2"), undefined);
  });

  const cloneErrors: [string, string, Record<string, unknown>, number][] = [
    ["missing newosimage", "compute-image", { nocopy: true }, 404],
    ["existing target", "compute-image", { newosimage: "img-clone" }, 409],
    ["unknown source", "img-none", { newosimage: "img-z" }, 404],
    ["invalid target", "compute-image", { newosimage: "a/b" }, 400],
  ];
  for (const [label, source, fields, status] of cloneErrors) {
    test(`clone with ${label} is ${status}`, async () => {
      const count = (await t.db.orm.select().from(osimage)).length;
      const response = await post(t, `/config/osimage/${source}/_clone`, envelope(source, fields));
      assert.equal(response.status, status);
      assert.equal((await t.db.orm.select().from(osimage)).length, count);
    });
  }

  test("member lists nodes through their group", async () => {
    const response = await t.request("/config/osimage/compute-image/_member");
    assert.equal(response.status, 200);
    assert.deepEqual((await response.json()).config.osimage["compute-image"].members, ["node001", "node002", "node003", "node004"]);
  });

  test("member follows a node override", async () => {
    const clone = await storedImage(t, "img-clone");
    await t.db.write((tx) => tx.update(node).set({ osimage_id: clone.id }).where(eq(node.name, "node001")));
    const own = await (await t.request("/config/osimage/img-clone/_member")).json();
    assert.deepEqual(own.config.osimage["img-clone"].members, ["node001"]);
    const inherited = await (await t.request("/config/osimage/compute-image/_member")).json();
    assert.deepEqual(inherited.config.osimage["compute-image"].members, ["node002", "node003", "node004"]);
  });

  test("delete of an image a node uses is 409 naming it", async () => {
    const response = await t.request("/config/osimage/img-clone/_delete");
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /1 node \(node001\)/);
    assert.ok(await storedImage(t, "img-clone"));
  });

  test("delete of an image a group uses is 409 naming it", async () => {
    const response = await t.request("/config/osimage/compute-image/_delete");
    assert.equal(response.status, 409);
    assert.match((await response.json()).message, /1 group \(compute-group\)/);
  });

  test("delete removes the image and its tags", async () => {
    await t.db.write((tx) => tx.update(node).set({ osimagetag_id: null }));
    const id = (await storedImage(t, "img-renamed")).id;
    const response = await t.request("/config/osimage/img-renamed/_delete");
    assert.equal(response.status, 204);
    assert.equal(await storedImage(t, "img-renamed"), undefined);
    assert.equal((await t.db.orm.select().from(osimageTag).where(eq(osimageTag.osimage_id, id))).length, 0);
  });

  test("delete of an unknown image is 404", async () => {
    const response = await t.request("/config/osimage/img-renamed/_delete");
    assert.equal(response.status, 404);
  });

  test("list of no images is 404", async () => {
    await t.db.write(async (tx) => {
      await tx.update(node).set({ osimage_id: null, osimagetag_id: null });
      await tx.update(nodeGroup).set({ osimage_id: null, osimagetag_id: null });
      await tx.update(osimage).set({ tag_id: null });
      await tx.delete(osimageTag);
      await tx.delete(osimage);
    });
    const response = await t.request("/config/osimage");
    assert.equal(response.status, 404);
    const tags = await t.request("/config/osimagetag");
    assert.equal(tags.status, 404);
  });

  const unsupported: [string, string][] = [
    ["POST", "/config/osimage"],
    ["POST", "/config/osimage/x/_delete"],
    ["GET", "/config/osimage/x/_clone"],
    ["GET", "/config/osimage/x/tag"],
    ["POST", "/config/osimagetag"],
  ];
  for (const [method, path] of unsupported) {
    test(`${method} ${path} is 405`, async () => {
      const response = await t.request(path, method === "GET" ? {} : { method, json: {} });
      assert.equal(response.status, 405);
    });
  }

  test("requests without a token are 401", async () => {
    const response = await t.request("/config/osimage", { headers: { "x-access-tokens": "" } });
    assert.equal(response.status, 401);
  });
});



describe("osimage fields luna2-cli sends base64-encoded", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("a base64 value comes back as sent and a plain one encoded once", async () => {
    const encoded = Buffer.from("console=ttyS0 quiet").toString("base64");
    const post = await t.request("/config/osimage/compute-image", {
      method: "POST",
      json: { config: { osimage: { "compute-image": { kerneloptions: encoded, grab_filesystems: "/, /boot" } } } },
    });
    assert.equal(post.status, 204);
    const view = (await (await t.request("/config/osimage/compute-image")).json()).config.osimage["compute-image"];
    assert.equal(view.kerneloptions, encoded);
    assert.equal(Buffer.from(view.grab_filesystems, "base64").toString(), "/, /boot");
  });
});
