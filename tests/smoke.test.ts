import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { daemonCommand, freePort, ON_DENO, startProcess } from "./processes.ts";

const runtime = ON_DENO ? "Deno" : "Node";

describe(`daemon on a real listener (${runtime})`, () => {
  const directory = mkdtempSync(join(tmpdir(), "luna2-smoke-"));
  after(() => rmSync(directory, { recursive: true, force: true }));

  test("serves tokens and the cluster, never logs secrets, and stops cleanly on SIGTERM", async () => {
    const port = await freePort();
    const password = "smoke pass 'with' $quotes; and #hash";
    const file = join(directory, "luna.ini");
    writeFileSync(file, `[API]\nUSERNAME = luna\nPASSWORD = ${password}\nSECRET_KEY = smoke-secret-key-0123456789abcdef\nLISTEN = 127.0.0.1:${port}\n[LOGGER]\nLEVEL = debug\n`);
    const { program, args } = daemonCommand();
    const daemon = await startProcess(program, [...args, "--config", file], { cwd: directory, ready: /Listening on/, timeoutMs: 60000 });
    const base = `http://127.0.0.1:${port}`;

    try {
      const tokenResponse = await fetch(`${base}/token`, { method: "POST", body: JSON.stringify({ username: "luna", password }) });
      assert.equal(tokenResponse.status, 201);
      const { token } = await tokenResponse.json();

      const update = await fetch(`${base}/config/cluster`, {
        method: "POST",
        headers: { "x-access-tokens": token, "content-type": "application/json" },
        body: JSON.stringify({ config: { cluster: { technical_contacts: "smoke@example.org" } } }),
      });
      assert.equal(update.status, 204);
      const read = await fetch(`${base}/config/cluster`, { headers: { "x-access-tokens": token } });
      assert.equal((await read.json()).config.cluster.technical_contacts, "smoke@example.org");

      const denied = await fetch(`${base}/config/cluster`, { headers: { "x-access-tokens": "garbage" } });
      assert.equal(denied.status, 401);
      await denied.body?.cancel();

      process.kill(daemon.child.pid!, "SIGTERM");
      assert.equal(await daemon.exited, 0);
      const log = daemon.output();
      assert.match(log, /"route":"\/config\/cluster".*"status":204/);
      assert.match(log, /Stopped/);
      assert.ok(!log.includes(password), "the log contains the API password");
      assert.ok(!log.includes(token), "the log contains a token");
      assert.ok(!log.includes("smoke-secret-key"), "the log contains the SECRET_KEY");
    } finally {
      daemon.child.kill("SIGKILL");
    }
  });

  test("first start without a configuration generates private credentials", async () => {
    const cwd = join(directory, "first-start");
    const port = await freePort();
    mkdirSync(cwd);
    const { program, args } = daemonCommand();
    // --listen keeps the test off the default port 7050, which a running daemon may use.
    const firstPort = await freePort();
    const daemon = await startProcess(program, [...args, "--listen", `127.0.0.1:${firstPort}`], { cwd, ready: /Listening on/, timeoutMs: 60000 });
    assert.ok(daemon.output().includes(`"address":"127.0.0.1","port":${firstPort}`), "the daemon did not listen on the --listen port");
    process.kill(daemon.child.pid!, "SIGTERM");
    await daemon.exited;

    const generated = join(cwd, "luna2-state", "luna.ini");
    assert.equal(statSync(generated).mode & 0o777, 0o600);
    assert.equal(statSync(join(cwd, "luna2-state", "luna.key")).mode & 0o777, 0o600);
    const text = readFileSync(generated, "utf8");
    const password = /PASSWORD = (\S+)/.exec(text)![1];
    assert.match(daemon.output(), /Generated a new configuration/);
    assert.ok(!daemon.output().includes(password), "the generated password was logged");

    writeFileSync(generated, text.replace(/LISTEN = .*/, `LISTEN = 127.0.0.1:${port}`));
    const again = await startProcess(program, args, { cwd, ready: /Listening on/, timeoutMs: 60000 });
    try {
      const response = await fetch(`http://127.0.0.1:${port}/token`, { method: "POST", body: JSON.stringify({ username: "luna", password }) });
      assert.equal(response.status, 201);
      const { token } = await response.json();
      const nodes = await fetch(`http://127.0.0.1:${port}/config/cluster`, { headers: { "x-access-tokens": token } });
      assert.equal(nodes.status, 200);
      await nodes.body?.cancel();
    } finally {
      process.kill(again.child.pid!, "SIGTERM");
      assert.equal(await again.exited, 0);
    }
  });
});
