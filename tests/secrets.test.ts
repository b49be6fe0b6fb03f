import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { groupSecret, nodeSecret } from "../lib/db/schema/index.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

const CONTENT = Buffer.from("-----BEGIN KEY-----\nsecret 'value' \"quoted\" $HOME\n").toString("base64");
const PLAIN_CONTENT = "line one\n  'quoted' \"double\" and trailing spaces   \n";

function nodeBody(node: string, entries: unknown[]) {
  return { config: { secrets: { node: { [node]: entries } } } };
}

function groupBody(group: string, entries: unknown[]) {
  return { config: { secrets: { group: { [group]: entries } } } };
}

async function storedNodeSecrets(t: TestApp) {
  return t.db.orm.select().from(nodeSecret).orderBy(nodeSecret.name);
}

async function storedGroupSecrets(t: TestApp) {
  return t.db.orm.select().from(groupSecret).orderBy(groupSecret.name);
}

describe("secrets at rest", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("content is encrypted in the database", async () => {
    const response = await t.request("/config/secrets/node/node001", {
      method: "POST",
      json: nodeBody("node001", [{ name: "sshkey", content: CONTENT, path: "/root/.ssh/id_ed25519" }]),
    });
    assert.equal(response.status, 201);

    const [row] = await storedNodeSecrets(t);
    assert.equal(row.name, "sshkey");
    assert.equal(row.path, "/root/.ssh/id_ed25519");
    assert.match(row.content, /^v1:/);
    assert.ok(!row.content.includes(CONTENT), "raw row contains the content as sent");
    assert.ok(!row.content.includes("BEGIN KEY"), "raw row contains the decoded content");
    assert.equal(await t.services.secrets.decrypt(row.content), CONTENT);
  });

  test("tampered ciphertext fails with 503", async () => {
    const [row] = await storedNodeSecrets(t);
    const bytes = Buffer.from(row.content.slice(3), "base64");
    bytes[bytes.length - 20] ^= 0x01;
    await t.db.write((tx) => tx.update(nodeSecret).set({ content: "v1:" + bytes.toString("base64") }).where(eq(nodeSecret.id, row.id)));

    const response = await t.request("/config/secrets/node/node001/sshkey");
    assert.equal(response.status, 503);
    const body = await response.json();
    assert.match(body.message, /Secret "sshkey" of node "node001" cannot be decrypted/);
    assert.ok(!JSON.stringify(body).includes("content"));

    const list = await t.request("/config/secrets");
    assert.equal(list.status, 503);
  });
});

describe("GET /config/secrets", () => {
  let t: TestApp;
  beforeEach(async () => (t = await createTestApp()));
  afterEach(() => t.close());

  test("no secrets gets 404", async () => {
    const response = await t.request("/config/secrets");
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { message: "No secrets available" });
  });

  test("lists node and group secrets decrypted", async () => {
    await t.request("/config/secrets/node/node002", { method: "POST", json: nodeBody("node002", [{ name: "b", content: "Yg==" }]) });
    await t.request("/config/secrets/node/node001", { method: "POST", json: nodeBody("node001", [{ name: "a", content: "YQ==", path: "/etc/a" }]) });
    await t.request("/config/secrets/group/compute-group", { method: "POST", json: groupBody("compute-group", [{ name: "g", content: PLAIN_CONTENT }]) });

    const response = await t.request("/config/secrets");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      config: {
        secrets: {
          node: {
            node001: [{ name: "a", content: "YQ==", path: "/etc/a" }],
            node002: [{ name: "b", content: "Yg==", path: null }],
          },
          group: { "compute-group": [{ name: "g", content: PLAIN_CONTENT, path: null }] },
        },
      },
    });
  });

  test("POST is not allowed", async () => {
    const response = await t.request("/config/secrets", { method: "POST", json: {} });
    assert.equal(response.status, 405);
  });

  test("node and group prefixes are not routes", async () => {
    for (const path of ["/config/secrets/node", "/config/secrets/group"]) {
      assert.equal((await t.request(path)).status, 404, path);
      assert.equal((await t.request(path, { method: "POST", json: {} })).status, 404, path);
    }
  });
});

describe("node secrets", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("list POST creating gets 201", async () => {
    const response = await t.request("/config/secrets/node/node001", {
      method: "POST",
      json: nodeBody("node001", [
        { name: "one", content: "b25l", path: "/etc/one" },
        { name: "two", content: PLAIN_CONTENT },
      ]),
    });
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { message: 'Created secrets "one", "two" for node "node001"' });
    const rows = await storedNodeSecrets(t);
    assert.deepEqual(rows.map((row) => [row.name, row.path]), [["one", "/etc/one"], ["two", null]]);
    assert.equal(await t.services.secrets.decrypt(rows[1].content), PLAIN_CONTENT);
  });

  test("list POST updating only gets 204", async () => {
    const response = await t.request("/config/secrets/node/node001", {
      method: "POST",
      json: nodeBody("node001", [{ name: "one", content: "bmV3" }, { name: "two", path: "/etc/two" }]),
    });
    assert.equal(response.status, 204);
    const rows = await storedNodeSecrets(t);
    assert.equal(await t.services.secrets.decrypt(rows[0].content), "bmV3");
    assert.equal(rows[0].path, "/etc/one", "path left out keeps the stored path");
    assert.equal(rows[1].path, "/etc/two");
    assert.equal(await t.services.secrets.decrypt(rows[1].content), PLAIN_CONTENT, "content left out keeps the stored content");
  });

  test("list POST creating and updating gets 201", async () => {
    const response = await t.request("/config/secrets/node/node001", {
      method: "POST",
      json: nodeBody("node001", [{ name: "one", path: "" }, { name: "three", content: "dGhyZWU=" }]),
    });
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { message: 'Created secret "three" and updated "one" for node "node001"' });
    const rows = await storedNodeSecrets(t);
    assert.deepEqual(rows.map((row) => [row.name, row.path]), [["one", null], ["three", null], ["two", "/etc/two"]]);
  });

  test("GET lists the node's and its group's secrets", async () => {
    await t.request("/config/secrets/group/compute-group", { method: "POST", json: groupBody("compute-group", [{ name: "munge", content: "bXVuZ2U=", path: "/etc/munge/munge.key" }]) });
    const response = await t.request("/config/secrets/node/node001");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      config: {
        secrets: {
          node: {
            node001: [
              { name: "one", content: "bmV3", path: null },
              { name: "three", content: "dGhyZWU=", path: null },
              { name: "two", content: PLAIN_CONTENT, path: "/etc/two" },
            ],
          },
          group: { "compute-group": [{ name: "munge", content: "bXVuZ2U=", path: "/etc/munge/munge.key" }] },
        },
      },
    });
  });

  test("GET of a node with only group secrets shows them", async () => {
    const response = await t.request("/config/secrets/node/node002");
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.deepEqual(Object.keys(body.config.secrets), ["group"]);
  });

  test("provision token of the node may read", async () => {
    const token = await t.services.tokens.issueProvision("node001");
    const response = await t.request("/config/secrets/node/node001", { headers: { "x-access-tokens": token } });
    assert.equal(response.status, 200);
    assert.equal((await response.json()).config.secrets.node.node001.length, 3);
  });

  test("provision token of another node gets 403", async () => {
    const token = await t.services.tokens.issueProvision("node002");
    const response = await t.request("/config/secrets/node/node001", { headers: { "x-access-tokens": token } });
    assert.equal(response.status, 403);
    assert.deepEqual(await response.json(), { message: "Token is not valid for this node" });
  });

  test("provision token may not use admin routes", async () => {
    const token = await t.services.tokens.issueProvision("node001");
    const cases: [string, RequestInit & { json?: unknown }][] = [
      ["/config/secrets", {}],
      ["/config/secrets/node/node001/one", {}],
      ["/config/secrets/node/node001", { method: "POST", json: nodeBody("node001", [{ name: "x", content: "eA==" }]) }],
      ["/config/secrets/node/node001/one/_delete", {}],
    ];
    for (const [path, init] of cases) {
      const response = await t.request(path, { ...init, headers: { "x-access-tokens": token } });
      assert.equal(response.status, 403, path);
    }
    assert.equal((await storedNodeSecrets(t)).length, 3);
  });

  test("missing token gets 401", async () => {
    const response = await t.request("/config/secrets/node/node001", { headers: { "x-access-tokens": "" } });
    assert.equal(response.status, 401);
  });

  test("single GET shows one secret", async () => {
    const response = await t.request("/config/secrets/node/node001/two");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { config: { secrets: { node: { node001: [{ name: "two", content: PLAIN_CONTENT, path: "/etc/two" }] } } } });
  });

  test("single POST updates and creates with 204", async () => {
    const update = await t.request("/config/secrets/node/node001/two", { method: "POST", json: nodeBody("node001", [{ name: "two", content: "dHdv" }]) });
    assert.equal(update.status, 204);
    const create = await t.request("/config/secrets/node/node001/my%20secret", { method: "POST", json: nodeBody("node001", [{ content: "bWluZQ==", path: "/etc/mine" }]) });
    assert.equal(create.status, 204);

    const rows = await storedNodeSecrets(t);
    const two = rows.find((row) => row.name === "two")!;
    assert.equal(await t.services.secrets.decrypt(two.content), "dHdv");
    assert.equal(two.path, "/etc/two");
    const mine = rows.find((row) => row.name === "my secret")!;
    assert.equal(await t.services.secrets.decrypt(mine.content), "bWluZQ==");
    assert.equal(mine.path, "/etc/mine");
  });

  test("clone copies content and path with 201", async () => {
    const response = await t.request("/config/secrets/node/node001/two/_clone", {
      method: "POST",
      json: nodeBody("node001", [{ name: "two", newsecretname: "two-copy", content: false, path: null }]),
    });
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { message: 'Cloned secret "two" of node "node001" to "two-copy"' });
    const copy = (await storedNodeSecrets(t)).find((row) => row.name === "two-copy")!;
    assert.equal(copy.path, "/etc/two");
    assert.equal(await t.services.secrets.decrypt(copy.content), "dHdv");
  });

  test("clone with new content and path", async () => {
    const response = await t.request("/config/secrets/node/node001/two/_clone", {
      method: "POST",
      json: nodeBody("node001", [{ newsecretname: "two-b", content: "Yg==", path: "/etc/b" }]),
    });
    assert.equal(response.status, 201);
    const copy = (await storedNodeSecrets(t)).find((row) => row.name === "two-b")!;
    assert.equal(copy.path, "/etc/b");
    assert.equal(await t.services.secrets.decrypt(copy.content), "Yg==");
  });

  test("clone onto an existing name gets 409", async () => {
    const before = (await storedNodeSecrets(t)).length;
    const response = await t.request("/config/secrets/node/node001/two/_clone", { method: "POST", json: nodeBody("node001", [{ newsecretname: "one" }]) });
    assert.equal(response.status, 409);
    assert.deepEqual(await response.json(), { message: 'Secret "one" of node "node001" already exists' });
    assert.equal((await storedNodeSecrets(t)).length, before);
  });

  test("clone of a missing secret gets 404", async () => {
    const response = await t.request("/config/secrets/node/node001/nothere/_clone", { method: "POST", json: nodeBody("node001", [{ newsecretname: "x" }]) });
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { message: 'Secret "nothere" of node "node001" does not exist' });
  });

  test("delete gets 204 and removes the row", async () => {
    const response = await t.request("/config/secrets/node/node001/two-b/_delete");
    assert.equal(response.status, 204);
    assert.equal((await storedNodeSecrets(t)).some((row) => row.name === "two-b"), false);
    const again = await t.request("/config/secrets/node/node001/two-b/_delete");
    assert.equal(again.status, 404);
  });

  test("unsupported methods get 405", async () => {
    assert.equal((await t.request("/config/secrets/node/node001/one/_delete", { method: "POST", json: {} })).status, 405);
    assert.equal((await t.request("/config/secrets/node/node001/one/_clone")).status, 405);
  });
});

describe("group secrets", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("GET without secrets gets 404", async () => {
    const response = await t.request("/config/secrets/group/compute-group");
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { message: 'No secrets available for group "compute-group"' });
  });

  test("list POST creates with 201 and updates with 204", async () => {
    const created = await t.request("/config/secrets/group/compute-group", { method: "POST", json: groupBody("compute-group", [{ name: "munge", content: "bXVuZ2U=", path: "/etc/munge/munge.key" }]) });
    assert.equal(created.status, 201);
    assert.deepEqual(await created.json(), { message: 'Created secret "munge" for group "compute-group"' });
    const updated = await t.request("/config/secrets/group/compute-group", { method: "POST", json: groupBody("compute-group", [{ name: "munge", content: "bmV3" }]) });
    assert.equal(updated.status, 204);

    const [row] = await storedGroupSecrets(t);
    assert.ok(!row.content.includes("bmV3"));
    assert.equal(await t.services.secrets.decrypt(row.content), "bmV3");
    assert.equal(row.path, "/etc/munge/munge.key");
  });

  test("GET lists the group's secrets", async () => {
    const response = await t.request("/config/secrets/group/compute-group");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { config: { secrets: { group: { "compute-group": [{ name: "munge", content: "bmV3", path: "/etc/munge/munge.key" }] } } } });
  });

  test("single GET is served for luna2-cli", async () => {
    const response = await t.request("/config/secrets/group/compute-group/munge");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { config: { secrets: { group: { "compute-group": [{ name: "munge", content: "bmV3", path: "/etc/munge/munge.key" }] } } } });
  });

  test("single POST updates with 204", async () => {
    const response = await t.request("/config/secrets/group/compute-group/munge", { method: "POST", json: groupBody("compute-group", [{ name: "munge", path: "/etc/munge/key" }]) });
    assert.equal(response.status, 204);
    const [row] = await storedGroupSecrets(t);
    assert.equal(row.path, "/etc/munge/key");
  });

  test("single POST of a missing secret gets 404", async () => {
    const response = await t.request("/config/secrets/group/compute-group/absent", { method: "POST", json: groupBody("compute-group", [{ content: "eA==" }]) });
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { message: 'Secret "absent" of group "compute-group" does not exist' });
    assert.equal((await storedGroupSecrets(t)).length, 1);
  });

  test("clone gets 201 and 409 on an existing name", async () => {
    const response = await t.request("/config/secrets/group/compute-group/munge/_clone", { method: "POST", json: groupBody("compute-group", [{ name: "munge", newsecretname: "munge2" }]) });
    assert.equal(response.status, 201);
    const rows = await storedGroupSecrets(t);
    assert.deepEqual(rows.map((row) => [row.name, row.path]), [["munge", "/etc/munge/key"], ["munge2", "/etc/munge/key"]]);
    assert.equal(await t.services.secrets.decrypt(rows[1].content), "bmV3");

    const again = await t.request("/config/secrets/group/compute-group/munge/_clone", { method: "POST", json: groupBody("compute-group", [{ newsecretname: "munge2" }]) });
    assert.equal(again.status, 409);
  });

  test("delete by POST and by GET", async () => {
    await t.request("/config/secrets/group/compute-group/munge/_clone", { method: "POST", json: groupBody("compute-group", [{ newsecretname: "munge3" }]) });
    const byPost = await t.request("/config/secrets/group/compute-group/munge2/_delete", { method: "POST" });
    assert.equal(byPost.status, 204);
    const byGet = await t.request("/config/secrets/group/compute-group/munge3/_delete");
    assert.equal(byGet.status, 204);
    assert.deepEqual((await storedGroupSecrets(t)).map((row) => row.name), ["munge"]);
    const missing = await t.request("/config/secrets/group/compute-group/munge3/_delete", { method: "POST" });
    assert.equal(missing.status, 404);
  });

  test("unknown group gets 404", async () => {
    for (const [path, init] of [
      ["/config/secrets/group/nogroup", {}],
      ["/config/secrets/group/nogroup", { method: "POST", json: groupBody("nogroup", [{ name: "a", content: "YQ==" }]) }],
      ["/config/secrets/group/nogroup/a/_delete", { method: "POST" }],
    ] as const) {
      const response = await t.request(path, init);
      assert.equal(response.status, 404, path);
      assert.deepEqual(await response.json(), { message: 'Group "nogroup" does not exist' });
    }
  });
});

describe("secret input validation", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    await t.request("/config/secrets/node/node001", { method: "POST", json: nodeBody("node001", [{ name: "kept", content: "a2VwdA==" }]) });
  });
  after(() => t.close());

  const cases: { title: string; path: string; body: unknown; status: number; message: RegExp }[] = [
    { title: "relative path", path: "/config/secrets/node/node001", body: nodeBody("node001", [{ name: "a", content: "YQ==", path: "etc/a" }]), status: 400, message: /path "etc\/a" must be absolute/ },
    { title: "dot-dot path", path: "/config/secrets/node/node001", body: nodeBody("node001", [{ name: "a", content: "YQ==", path: "/etc/../../a" }]), status: 400, message: /must not contain '\.\.' segments/ },
    { title: "invalid name", path: "/config/secrets/node/node001", body: nodeBody("node001", [{ name: "a/b", content: "YQ==" }]), status: 400, message: /name "a\/b" is invalid/ },
    { title: "reserved name", path: "/config/secrets/node/node001", body: nodeBody("node001", [{ name: "default", content: "YQ==" }]), status: 400, message: /reserved word/ },
    { title: "missing name", path: "/config/secrets/node/node001", body: nodeBody("node001", [{ content: "YQ==" }]), status: 400, message: /missing key "config\.secrets\.node\.node001\.0\.name"/ },
    { title: "unknown key", path: "/config/secrets/node/node001", body: nodeBody("node001", [{ name: "a", content: "YQ==", mode: "0600" }]), status: 400, message: /unknown key "config\.secrets\.node\.node001\.0\.mode"/ },
    { title: "content not a string", path: "/config/secrets/node/node001", body: nodeBody("node001", [{ name: "a", content: 5 }]), status: 400, message: /content/ },
    { title: "new secret without content", path: "/config/secrets/node/node001", body: nodeBody("node001", [{ name: "fresh", path: "/etc/x" }]), status: 400, message: /secret "fresh" of node "node001" does not exist yet, so it needs "content"/ },
    { title: "name listed twice", path: "/config/secrets/node/node001", body: nodeBody("node001", [{ name: "a", content: "YQ==" }, { name: "a", content: "Yg==" }]), status: 400, message: /listed more than once/ },
    { title: "empty list", path: "/config/secrets/node/node001", body: nodeBody("node001", []), status: 400, message: /at least one secret/ },
    { title: "body names another node", path: "/config/secrets/node/node001", body: nodeBody("node002", [{ name: "a", content: "YQ==" }]), status: 400, message: /exactly config\.secrets\.node\.node001, not "node002"/ },
    { title: "group key on node route", path: "/config/secrets/node/node001", body: groupBody("node001", [{ name: "a", content: "YQ==" }]), status: 400, message: /missing key "config\.secrets\.node"/ },
    { title: "upper-case node in URL", path: "/config/secrets/node/Node001", body: nodeBody("Node001", [{ name: "a", content: "YQ==" }]), status: 400, message: /Node name "Node001" is invalid/ },
    { title: "unknown node", path: "/config/secrets/node/node999", body: nodeBody("node999", [{ name: "a", content: "YQ==" }]), status: 404, message: /Node "node999" does not exist/ },
    { title: "single POST name mismatch", path: "/config/secrets/node/node001/kept", body: nodeBody("node001", [{ name: "other", content: "YQ==" }]), status: 400, message: /name "other" does not match secret "kept"/ },
    { title: "single POST two entries", path: "/config/secrets/node/node001/kept", body: nodeBody("node001", [{ content: "YQ==" }, { content: "Yg==" }]), status: 400, message: /exactly one secret, not 2/ },
    { title: "clone without new name", path: "/config/secrets/node/node001/kept/_clone", body: nodeBody("node001", [{ name: "kept" }]), status: 400, message: /missing key "config\.secrets\.node\.node001\.0\.newsecretname"/ },
    { title: "clone to invalid name", path: "/config/secrets/node/node001/kept/_clone", body: nodeBody("node001", [{ newsecretname: "-bad" }]), status: 400, message: /newsecretname "-bad" is invalid/ },
    { title: "clone with content true", path: "/config/secrets/node/node001/kept/_clone", body: nodeBody("node001", [{ newsecretname: "x", content: true }]), status: 400, message: /content/ },
    { title: "invalid secret name in URL", path: "/config/secrets/node/node001/bad%2Fname", body: nodeBody("node001", [{ content: "YQ==" }]), status: 400, message: /Secret name "bad\/name" is invalid/ },
  ];

  for (const { title, path, body, status, message } of cases) {
    test(`${title} gets ${status}`, async () => {
      const response = await t.request(path, { method: "POST", json: body });
      assert.equal(response.status, status);
      assert.match((await response.json()).message, message);
      assert.deepEqual((await storedNodeSecrets(t)).map((row) => row.name), ["kept"]);
    });
  }

  test("body that is not JSON gets 400", async () => {
    const response = await t.request("/config/secrets/node/node001", { method: "POST", body: "{" });
    assert.equal(response.status, 400);
  });

  test("content is stored exactly as sent", async () => {
    const odd = "  not base64 at all: 'single' \"double\" \t tab\r\nunicode ✓ \u00a0 ";
    const response = await t.request("/config/secrets/node/node001/odd", { method: "POST", json: nodeBody("node001", [{ content: odd }]) });
    assert.equal(response.status, 204);
    const read = await t.request("/config/secrets/node/node001/odd");
    assert.equal((await read.json()).config.secrets.node.node001[0].content, odd);
    await t.request("/config/secrets/node/node001/odd/_delete");
  });
});
