import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../lib/app.ts";
import { systemHardware } from "../lib/hardware/index.ts";
import { createTestApp, TEST_PASSWORD, type TestApp } from "./helpers.ts";

/**
 * Writes a stand-in for obol: it appends each argument on its own line (and `--` after the last)
 * to argv.log, copies the line a `--prompt-password` run reads from stdin to stdin.log, and
 * prints a one-user list for `-J user list`.
 */
function writeFakeObol(directory: string): string {
  const script = join(directory, "fake-obol");
  const argvLog = join(directory, "argv.log");
  const stdinLog = join(directory, "stdin.log");
  writeFileSync(
    script,
    [
      "#!/bin/sh",
      `for arg in "$@"; do printf '%s\\n' "$arg" >> '${argvLog}'; done`,
      `printf -- '--\\n' >> '${argvLog}'`,
      'if [ "$*" = "-J user list" ]; then',
      `  printf '[{"uid": "alice", "uidNumber": "1050", "gidNumber": "1050"}]\\n'`,
      "fi",
      'if [ "$*" = "-J group list" ]; then printf \'[]\\n\'; fi',
      'for arg in "$@"; do',
      '  if [ "$arg" = "--prompt-password" ]; then',
      "    printf 'Enter password: '",
      `    IFS= read -r line; printf '%s' "$line" > '${stdinLog}'`,
      "  fi",
      "done",
      "exit 0",
      "",
    ].join("\n"),
  );
  chmodSync(script, 0o755);
  return script;
}

/** Splits argv.log into one argv per obol run. */
function readRuns(directory: string): string[][] {
  const path = join(directory, "argv.log");
  if (!existsSync(path)) return [];
  const runs: string[][] = [[]];
  for (const line of readFileSync(path, "utf8").split("\n").slice(0, -1)) {
    if (line === "--") runs.push([]);
    else runs[runs.length - 1].push(line);
  }
  return runs.slice(0, -1);
}

/** Builds an app on `t`'s config and database that runs real programs. */
function realApp(t: TestApp) {
  const { app } = createApp({ config: t.config, db: t.db, hardware: systemHardware, clock: t.clock });
  return (path: string, init: RequestInit & { json?: unknown } = {}) =>
    Promise.resolve(
      app.request(path, {
        ...init,
        headers: { "x-access-tokens": t.token, "content-type": "application/json" },
        body: init.json === undefined ? init.body : JSON.stringify(init.json),
      }),
    );
}

describe("osuser with a real command", () => {
  const scriptDirectory = mkdtempSync(join(tmpdir(), "luna2-obol-"));
  const script = writeFakeObol(scriptDirectory);
  let t: TestApp;
  let request: ReturnType<typeof realApp>;
  before(async () => {
    t = await createTestApp({ configExtra: `[USERS]\nCOMMAND = ${script}` });
    request = realApp(t);
  });
  after(async () => {
    await t.close();
    rmSync(scriptDirectory, { recursive: true, force: true });
  });

  test("config names the script", () => {
    assert.equal(t.config.users.command, script);
  });

  test("list parses the command's JSON", async () => {
    const response = await request("/config/osuser");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { config: { osuser: [{ uid: "alice", uidNumber: "1050", gidNumber: "1050" }] } });
    assert.deepEqual(readRuns(scriptDirectory).at(-1), ["-J", "user", "list"]);
  });

  test("empty group list gets 404", async () => {
    const response = await request("/config/osgroup");
    assert.equal(response.status, 404);
  });

  test("new user password arrives on stdin", async () => {
    const response = await request("/config/osuser/bob", {
      method: "POST",
      json: { config: { osuser: { bob: { userPassword: TEST_PASSWORD, sn: "Builder", memberOf: ["devs"] } } } },
    });
    assert.equal(response.status, 201);

    const runs = readRuns(scriptDirectory);
    assert.deepEqual(runs.slice(-2), [["-J", "user", "list"], ["user", "add", "bob", "--sn=Builder", "--groups=devs", "--prompt-password"]]);
    assert.equal(readFileSync(join(scriptDirectory, "stdin.log"), "utf8"), TEST_PASSWORD);
    assert.ok(!readFileSync(join(scriptDirectory, "argv.log"), "utf8").includes(TEST_PASSWORD));
  });

  test("existing user is modified", async () => {
    const response = await request("/config/osuser/alice", { method: "POST", json: { config: { osuser: { alice: { loginShell: "/bin/zsh" } } } } });
    assert.equal(response.status, 204);
    assert.deepEqual(readRuns(scriptDirectory).at(-1), ["user", "modify", "alice", "--shell=/bin/zsh"]);
  });

  test("delete runs user delete", async () => {
    const response = await request("/config/osuser/alice/_delete");
    assert.equal(response.status, 204);
    assert.deepEqual(readRuns(scriptDirectory).at(-1), ["user", "delete", "alice"]);
  });
});

describe("osuser with a missing command", () => {
  const missing = join(tmpdir(), "luna2-no-such-directory", "obol");
  let t: TestApp;
  let request: ReturnType<typeof realApp>;
  before(async () => {
    t = await createTestApp({ configExtra: `[USERS]\nCOMMAND = ${missing}` });
    request = realApp(t);
  });
  after(() => t.close());

  const cases: [string, RequestInit & { json?: unknown }][] = [
    ["/config/osuser", {}],
    ["/config/osgroup", {}],
    ["/config/osuser/alice", {}],
    ["/config/osuser/alice", { method: "POST", json: { config: { osuser: { alice: { userPassword: "secret" } } } } }],
    ["/config/osgroup/devs", { method: "POST", json: { config: { osgroup: { devs: {} } } } }],
    ["/config/osuser/alice/_delete", {}],
  ];

  for (const [path, init] of cases) {
    test(`${init.method ?? "GET"} ${path} gets 503`, async () => {
      const response = await request(path, init);
      assert.equal(response.status, 503);
      const { message } = await response.json();
      assert.ok(message.includes(missing), message);
      assert.match(message, /could not be started/);
      assert.ok(!message.includes("secret"), message);
    });
  }
});
