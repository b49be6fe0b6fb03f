import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Hono } from "hono";
import { collectRoutes, renderManifest } from "../scripts/routes-manifest.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

const root = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");

describe("route manifest", () => {
  test("lib/routes.gen.ts matches the files under routes/", () => {
    const committed = readFileSync(join(root, "lib", "routes.gen.ts"), "utf8");
    assert.equal(committed, renderManifest(collectRoutes(root)), "the manifest is stale: run `npm run routes`");
  });

  test("static segments sort before parameters at the same depth", () => {
    const routes = collectRoutes(root).map((route) => route.path);
    for (let i = 0; i < routes.length; i++) {
      for (let j = i + 1; j < routes.length; j++) {
        const earlier = routes[i].split("/");
        const later = routes[j].split("/");
        const depth = earlier.findIndex((segment, index) => segment !== later[index]);
        if (depth < 0 || depth >= later.length || depth >= earlier.length) continue;
        const earlierIsParameter = earlier[depth].startsWith("{");
        const laterIsParameter = later[depth].startsWith("{");
        if (earlierIsParameter) assert.ok(laterIsParameter, `${routes[i]} must come after ${routes[j]}`);
      }
    }
  });
});

describe("route matching order", () => {
  // The same registration scheme as lib/app.ts, on a synthetic table, so the rule is pinned even
  // for routes that do not exist yet.
  const table = [
    { path: "/config/network/:name/_nextfreeip", method: "GET", id: "nextfreeip" },
    { path: "/config/network/:name/_delete", method: "GET", id: "delete" },
    { path: "/config/network/:name/:ipaddr", method: "GET", id: "ipaddr" },
    { path: "/config/node/:name/interfaces", method: "GET", id: "interfaces" },
    { path: "/config/node/:name", method: "GET", id: "node" },
    { path: "/control/action/power/:hostname/:action{_[a-z0-9]+}", method: "GET", id: "action" },
  ];
  const app = new Hono();
  for (const route of table) {
    app.on(route.method, route.path, (c) => c.json({ id: route.id, params: c.req.param() }));
    app.all(route.path, (c) => c.json({ id: `${route.id}:405` }, 405));
  }

  const cases: [string, string, string, number][] = [
    ["GET", "/config/network/cluster/_nextfreeip", "nextfreeip", 200],
    ["POST", "/config/network/cluster/_nextfreeip", "nextfreeip:405", 405],
    ["GET", "/config/network/cluster/_delete", "delete", 200],
    ["GET", "/config/network/cluster/10.141.0.1", "ipaddr", 200],
    ["POST", "/config/network/cluster/10.141.0.1", "ipaddr:405", 405],
    ["GET", "/config/node/node001/interfaces", "interfaces", 200],
    ["GET", "/config/node/node001", "node", 200],
    ["GET", "/control/action/power/node001/_status", "action", 200],
  ];
  for (const [method, path, id, status] of cases) {
    test(`${method} ${path} goes to ${id}`, async () => {
      const response = await app.request(path, { method });
      assert.equal(response.status, status);
      assert.equal((await response.json()).id, id);
    });
  }
});

describe("app routing", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("unknown path answers 404 with a JSON message", async () => {
    const response = await t.request("/nonexistent");
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { message: "No route for GET /nonexistent" });
  });

  test("known path with an unserved method answers 405 naming the allowed ones", async () => {
    const response = await t.request("/ping", { method: "POST" });
    assert.equal(response.status, 405);
    assert.equal((await response.json()).message, "Method POST is not allowed on /ping: use GET");
  });

  test("HEAD of a GET route answers without a body", async () => {
    const response = await t.request("/version", { method: "HEAD" });
    assert.equal(response.status, 200);
  });

  test("GET /all-routes lists every route file's methods", async () => {
    const routes = (await (await t.request("/all-routes")).json()) as { route: string; method: string }[];
    assert.ok(routes.some((route) => route.route === "/config/cluster" && route.method === "POST"));
    assert.ok(routes.some((route) => route.route === "/token" && route.method === "POST"));
    assert.equal(routes.length, new Set(routes.map((route) => `${route.method} ${route.route}`)).size);
  });

  test("GET /openapi.json describes bodies from the valibot schemas", async () => {
    const document = await (await t.request("/openapi.json")).json();
    assert.equal(document.openapi, "3.1.0");
    const post = document.paths["/config/cluster"].post;
    assert.ok(post.requestBody.content["application/json"].schema.properties.config);
    assert.deepEqual(post.security, [{ token: [] }]);
    assert.deepEqual(document.paths["/ping"].get.security, []);
  });

  test("GET /api renders the reference page with escaped text", async () => {
    const response = await t.request("/api");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/html/);
    const page = await response.text();
    assert.match(page, /<code>\/config\/cluster<\/code>/);
  });

  test("GET /version and /ping need no token", async () => {
    const headers = { "x-access-tokens": "" };
    assert.deepEqual(await (await t.request("/ping", { headers })).json(), { message: "pong" });
    assert.equal((await (await t.request("/version", { headers })).json()).version.api, 1);
  });
});
