import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { decodeJwt, SignJWT } from "jose";
import { createTestApp, TEST_EPOCH, TEST_PASSWORD, type TestApp } from "./helpers.ts";

describe("POST /token", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("issues a token for the configured credentials", async () => {
    const response = await t.request("/token", { method: "POST", json: { username: "luna", password: TEST_PASSWORD } });
    assert.equal(response.status, 201);
    const { token } = await response.json();
    const claims = decodeJwt(token);
    assert.equal(claims.id, 0);
    assert.equal(claims.exp, TEST_EPOCH / 1000 + 3600);
  });

  test("rejects a wrong password with 401", async () => {
    const response = await t.request("/token", { method: "POST", json: { username: "luna", password: "bad" } });
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), { message: "Incorrect password ******, check luna.ini" });
  });

  test("rejects a body that is not JSON with 400", async () => {
    const response = await t.request("/token", { method: "POST", body: "notjson" });
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /not valid JSON/);
  });

  test("rejects an unknown key with 400 naming it", async () => {
    const response = await t.request("/token", { method: "POST", json: { username: "luna", password: "x", role: "admin" } });
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /unknown key "role"/);
  });

  test("compares the password exactly as configured", async () => {
    const stripped = TEST_PASSWORD.replaceAll("'", "");
    const response = await t.request("/token", { method: "POST", json: { username: "luna", password: stripped } });
    assert.equal(response.status, 401);
  });
});

describe("token check on protected routes", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("missing token gets 401 A valid token is missing", async () => {
    const response = await t.request("/config/cluster", { headers: { "x-access-tokens": "" } });
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), { message: "A valid token is missing" });
  });

  test("garbage token gets 401 Token is invalid", async () => {
    const response = await t.request("/config/cluster", { headers: { "x-access-tokens": "garbage" } });
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), { message: "Token is invalid" });
  });

  test("expired token gets 401 on a frozen clock", async () => {
    const token = await t.services.tokens.issueAdmin();
    t.clock.advance(3600 * 1000 + 1000);
    const response = await t.request("/config/cluster", { headers: { "x-access-tokens": token } });
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), { message: "Token is invalid" });
  });

  test("token signed with another key gets 401", async () => {
    const forged = await new SignJWT({ id: 0 })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(Math.floor(t.clock.now() / 1000) + 60)
      .sign(new TextEncoder().encode("another key"));
    const response = await t.request("/config/cluster", { headers: { "x-access-tokens": forged } });
    assert.equal(response.status, 401);
  });

  test("token with alg none gets 401", async () => {
    const header = btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=+$/, "");
    const payload = btoa(JSON.stringify({ id: 0, exp: Math.floor(t.clock.now() / 1000) + 60 })).replace(/=+$/, "");
    const response = await t.request("/config/cluster", { headers: { "x-access-tokens": `${header}.${payload}.` } });
    assert.equal(response.status, 401);
  });

  test("provision token gets 403 on admin routes", async () => {
    const token = await t.services.tokens.issueProvision("node001");
    const response = await t.request("/config/cluster", { headers: { "x-access-tokens": token } });
    assert.equal(response.status, 403);
    assert.deepEqual(await response.json(), { message: "Token is not permitted for this endpoint" });
  });
});

describe("POST /tpm/{node}", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("credentials give an admin token and register the TPM hash", async () => {
    const response = await t.request("/tpm/node001", { method: "POST", json: { username: "luna", password: TEST_PASSWORD, tpm_sha256: "abc123" } });
    assert.equal(response.status, 200);
    assert.equal(decodeJwt((await response.json()).token).id, 0);
  });

  test("the registered TPM hash gives a provision token for that node only", async () => {
    const response = await t.request("/tpm/node001", { method: "POST", json: { tpm_sha256: "abc123" } });
    assert.equal(response.status, 200);
    const claims = decodeJwt((await response.json()).token);
    assert.equal(claims.node, "node001");
    assert.equal(claims.scope, "provision");
    assert.equal(claims.id, undefined);
  });

  test("a wrong TPM hash gets 401", async () => {
    const response = await t.request("/tpm/node001", { method: "POST", json: { tpm_sha256: "wrong" } });
    assert.equal(response.status, 401);
  });

  test("a node without a registered hash gets 401", async () => {
    const response = await t.request("/tpm/node002", { method: "POST", json: { tpm_sha256: "abc123" } });
    assert.equal(response.status, 401);
  });
});

describe("GET /filesauth", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("kernels pass without a token", async () => {
    const response = await t.request("/filesauth", { headers: { "x-original-uri": "/files/compute-vmlinuz", "x-access-tokens": "" } });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { message: "Go" });
  });

  test("image archives need a token", async () => {
    const response = await t.request("/filesauth", { headers: { "x-original-uri": "/files/compute.tar.zst", "x-access-tokens": "" } });
    assert.equal(response.status, 401);
    const allowed = await t.request("/filesauth", { headers: { "x-original-uri": "/files/compute.tar.zst" } });
    assert.equal(allowed.status, 200);
  });

  test("a missing X-Original-URI gets 401", async () => {
    const response = await t.request("/filesauth");
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), { message: "Missing request uri" });
  });
});

describe("provision token reuse", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("provision token reused for five minutes", async () => {
    const first = await t.services.tokens.provisionTokenFor("node001");
    t.clock.advance(299_000);
    assert.equal(await t.services.tokens.provisionTokenFor("node001"), first);
    assert.notEqual(await t.services.tokens.provisionTokenFor("node002"), first);
    t.clock.advance(2000);
    const renewed = await t.services.tokens.provisionTokenFor("node001");
    assert.notEqual(renewed, first);
    assert.equal(decodeJwt(renewed).exp, Math.floor(t.clock.now() / 1000) + 3600);
  });
});
