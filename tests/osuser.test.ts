import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { CommandError, type CommandResult, type CommandSpec } from "../lib/hardware/index.ts";
import { createTestApp, TEST_PASSWORD, type TestApp } from "./helpers.ts";

type Account = Record<string, string | string[]>;

/** An in-memory stand-in for obol and its LDAP directory, replying to the commands obol accepts. */
class FakeDirectory {
  users: Account[] = [{ uid: "alice", uidNumber: "1050", gidNumber: "1050" }];
  groups: Account[] = [{ cn: "alice", gidNumber: "1050" }, { cn: "devs", gidNumber: "2000" }];
  /** Exit code and stderr for the next command that changes the directory. */
  writeFailure: { exitCode: number; stderr: string } | null = null;

  reply(spec: CommandSpec): Promise<CommandResult> {
    const args = spec.args;
    const done = (stdout = "") => Promise.resolve({ exitCode: 0, stdout, stderr: "", durationMs: 1 });
    if (args[0] === "-J" && args[2] === "list") return done(JSON.stringify(args[1] === "user" ? this.users : this.groups));
    if (args[0] === "-J" && args[1] === "user" && args[2] === "show") {
      const user = this.users.find((item) => item.uid === args[3]);
      return done(JSON.stringify({ ...user, loginShell: "/bin/bash", userPassword: "{SSHA}hash", groups: ["devs"] }));
    }
    if (args[0] === "-J" && args[1] === "group" && args[2] === "show") {
      const group = this.groups.find((item) => item.cn === args[3]);
      return done(JSON.stringify({ ...group, users: ["alice"] }));
    }
    if (this.writeFailure) {
      const { exitCode, stderr } = this.writeFailure;
      return Promise.reject(
        new CommandError({ program: spec.program, args: spec.args, exitCode, signal: null, timedOut: false, durationMs: 1, stderr, stdout: "" }),
      );
    }
    return done();
  }
}

function userBody(name: string, fields: Record<string, unknown>) {
  return { config: { osuser: { [name]: fields } } };
}

function groupBody(name: string, fields: Record<string, unknown>) {
  return { config: { osgroup: { [name]: fields } } };
}

describe("osuser and osgroup through a recording runner", () => {
  let t: TestApp;
  let directory: FakeDirectory;
  before(async () => (t = await createTestApp()));
  after(() => t.close());
  beforeEach(() => {
    directory = new FakeDirectory();
    t.hardware.calls.length = 0;
    t.hardware.reply = (spec) => directory.reply(spec);
  });

  const argvOf = () => t.hardware.calls.map((call) => [call.program, ...call.args]);
  const writes = () => t.hardware.calls.filter((call) => call.args[0] !== "-J");

  test("user list runs obol -J user list", async () => {
    const response = await t.request("/config/osuser");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { config: { osuser: [{ uid: "alice", uidNumber: "1050", gidNumber: "1050" }] } });
    assert.deepEqual(argvOf(), [["obol", "-J", "user", "list"]]);
    assert.equal(t.hardware.calls[0].timeoutMs > 0, true);
  });

  test("empty user list gets 404", async () => {
    directory.users = [];
    const response = await t.request("/config/osuser");
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { message: "No OS users available" });
  });

  test("user show hides the password hash", async () => {
    const response = await t.request("/config/osuser/alice");
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.deepEqual(body, {
      config: { osuser: { alice: { uid: "alice", uidNumber: "1050", gidNumber: "1050", loginShell: "/bin/bash", groups: ["devs"] } } },
    });
    assert.deepEqual(argvOf(), [["obol", "-J", "user", "list"], ["obol", "-J", "user", "show", "alice"]]);
  });

  test("unknown user show gets 404", async () => {
    const response = await t.request("/config/osuser/nobody");
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { message: 'OS user "nobody" does not exist' });
  });

  test("new user gets 201 and password on stdin", async () => {
    const response = await t.request("/config/osuser/bob", {
      method: "POST",
      json: userBody("bob", {
        userPassword: TEST_PASSWORD,
        cn: "Bob Builder",
        sn: "-Builder",
        givenName: "Bob",
        groupname: "devs",
        uidNumber: 1100,
        gidNumber: "2000",
        mail: "bob@example.com",
        telephoneNumber: "+31 20 123",
        loginShell: "/bin/zsh",
        homeDirectory: "/home/bob",
        memberOf: ["devs", "alice"],
        shadowExpire: -1,
      }),
    });
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { message: 'Created OS user "bob"' });

    const [add] = writes();
    assert.deepEqual(add.args, [
      "user", "add", "bob",
      "--cn=Bob Builder", "--sn=-Builder", "--givenName=Bob", "--group=devs", "--uid=1100", "--gid=2000",
      "--mail=bob@example.com", "--phone=+31 20 123", "--shell=/bin/zsh", "--groups=devs,alice", "--expire=-1",
      "--home=/home/bob", "--prompt-password",
    ]);
    assert.equal(add.stdin, `${TEST_PASSWORD}\n`);
    for (const call of t.hardware.calls) {
      assert.ok(!call.args.some((arg) => arg.includes(TEST_PASSWORD)), `password in argv: ${call.args.join(" ")}`);
      assert.ok(!call.args.some((arg) => arg.includes("dollar")), `part of the password in argv: ${call.args.join(" ")}`);
      assert.deepEqual(call.env, undefined);
    }
  });

  test("existing user gets modify and 204", async () => {
    const response = await t.request("/config/osuser/alice", { method: "POST", json: userBody("alice", { uidNumber: "1050", sn: "Liddell" }) });
    assert.equal(response.status, 204);
    assert.deepEqual(writes().map((call) => call.args), [["user", "modify", "alice", "--sn=Liddell"]]);
    assert.equal(writes()[0].stdin, undefined);
  });

  test("password change uses stdin only", async () => {
    const response = await t.request("/config/osuser/alice", { method: "POST", json: userBody("alice", { userPassword: "n3w pass'\"" }) });
    assert.equal(response.status, 204);
    const [modify] = writes();
    assert.deepEqual(modify.args, ["user", "modify", "alice", "--prompt-password"]);
    assert.equal(modify.stdin, "n3w pass'\"\n");
  });

  const invalidUsers: { title: string; path: string; body: unknown; message: RegExp }[] = [
    { title: "changed uid", path: "/config/osuser/alice", body: userBody("alice", { uidNumber: 1051 }), message: /uidNumber of OS user "alice" cannot be changed from 1050 to 1051/ },
    { title: "password with newline", path: "/config/osuser/bob", body: userBody("bob", { userPassword: "a\nb" }), message: /userPassword.*line breaks/ },
    { title: "empty password", path: "/config/osuser/bob", body: userBody("bob", { userPassword: "" }), message: /userPassword.*must not be empty/ },
    { title: "relative shell", path: "/config/osuser/bob", body: userBody("bob", { loginShell: "bash" }), message: /loginShell.*absolute path/ },
    { title: "empty surname", path: "/config/osuser/bob", body: userBody("bob", { sn: "" }), message: /sn.*must not be empty/ },
    { title: "uid not a number", path: "/config/osuser/bob", body: userBody("bob", { uidNumber: "12a" }), message: /uidNumber.*whole number/ },
    { title: "empty group list", path: "/config/osuser/bob", body: userBody("bob", { memberOf: [] }), message: /memberOf.*at least one/ },
    { title: "group with comma", path: "/config/osuser/bob", body: userBody("bob", { memberOf: ["a,b"] }), message: /memberOf "a,b" is invalid/ },
    { title: "expire below -1", path: "/config/osuser/bob", body: userBody("bob", { shadowExpire: "-2" }), message: /shadowExpire.*-1 for never/ },
    { title: "unknown key", path: "/config/osuser/bob", body: userBody("bob", { role: "admin" }), message: /unknown key "config\.osuser\.bob\.role"/ },
    { title: "control character", path: "/config/osuser/bob", body: userBody("bob", { cn: "a\u0007b" }), message: /cn.*control characters/ },
    { title: "body names another user", path: "/config/osuser/bob", body: userBody("carol", {}), message: /exactly config\.osuser\.bob, not "carol"/ },
    { title: "name starting with dash", path: "/config/osuser/-bob", body: userBody("-bob", {}), message: /User name "-bob" is invalid/ },
    { title: "name too long", path: `/config/osuser/${"a".repeat(33)}`, body: userBody("a".repeat(33), {}), message: /longer than 32 characters/ },
  ];

  for (const { title, path, body, message } of invalidUsers) {
    test(`user ${title} gets 400`, async () => {
      const response = await t.request(path, { method: "POST", json: body });
      assert.equal(response.status, 400);
      assert.match((await response.json()).message, message);
      assert.deepEqual(writes(), []);
    });
  }

  test("obol rejecting a change gets 400", async () => {
    directory.writeFailure = { exitCode: 1, stderr: "[ValueError] UID 1050 already exists\n" };
    const response = await t.request("/config/osuser/bob", { method: "POST", json: userBody("bob", { uidNumber: 1050 }) });
    assert.equal(response.status, 400);
    assert.equal((await response.json()).message, 'Invalid request: obol could not add OS user "bob": obol exited with code 1: [ValueError] UID 1050 already exists');
  });

  test("obol timing out gets 503", async () => {
    t.hardware.reply = (spec) => {
      if (spec.args[0] === "-J") return directory.reply(spec);
      return Promise.reject(new CommandError({ program: spec.program, args: spec.args, exitCode: null, signal: "SIGTERM", timedOut: true, durationMs: 30000, stderr: "", stdout: "" }));
    };
    const response = await t.request("/config/osuser/bob", { method: "POST", json: userBody("bob", {}) });
    assert.equal(response.status, 503);
    assert.equal((await response.json()).message, 'Cannot add OS user "bob": obol timed out after 30000 ms');
  });

  test("failing list gets 503", async () => {
    t.hardware.reply = (spec) =>
      Promise.reject(new CommandError({ program: spec.program, args: spec.args, exitCode: 1, signal: null, timedOut: false, durationMs: 1, stderr: "[ConnectionError] Failed binding to ldap", stdout: "" }));
    const response = await t.request("/config/osuser");
    assert.equal(response.status, 503);
    assert.equal((await response.json()).message, "Cannot list OS users: obol exited with code 1: [ConnectionError] Failed binding to ldap");
  });

  test("list output that is not JSON gets 503", async () => {
    t.hardware.reply = () => Promise.resolve({ exitCode: 0, stdout: "uid | uidNumber\n", stderr: "", durationMs: 1 });
    const response = await t.request("/config/osuser");
    assert.equal(response.status, 503);
    assert.match((await response.json()).message, /printed output that is not JSON/);
  });

  test("user delete gets 204", async () => {
    const response = await t.request("/config/osuser/alice/_delete");
    assert.equal(response.status, 204);
    assert.deepEqual(argvOf(), [["obol", "-J", "user", "list"], ["obol", "user", "delete", "alice"]]);
  });

  test("unknown user delete gets 404", async () => {
    const response = await t.request("/config/osuser/nobody/_delete");
    assert.equal(response.status, 404);
    assert.deepEqual(writes(), []);
  });

  test("group list and show", async () => {
    const list = await t.request("/config/osgroup");
    assert.equal(list.status, 200);
    assert.deepEqual((await list.json()).config.osgroup, directory.groups);
    const show = await t.request("/config/osgroup/devs");
    assert.equal(show.status, 200);
    assert.deepEqual(await show.json(), { config: { osgroup: { devs: { cn: "devs", gidNumber: "2000", users: ["alice"] } } } });
    assert.deepEqual(argvOf(), [["obol", "-J", "group", "list"], ["obol", "-J", "group", "list"], ["obol", "-J", "group", "show", "devs"]]);
  });

  test("new group gets 201", async () => {
    const response = await t.request("/config/osgroup/ops", { method: "POST", json: groupBody("ops", { gidNumber: 3000, member: ["alice", "bob"] }) });
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { message: 'Created OS group "ops"' });
    assert.deepEqual(writes().map((call) => call.args), [["group", "add", "ops", "--gid=3000", "--users=alice,bob"]]);
  });

  test("existing group gets modify and 204", async () => {
    const response = await t.request("/config/osgroup/devs", { method: "POST", json: groupBody("devs", { gidNumber: "2000", member: ["alice"] }) });
    assert.equal(response.status, 204);
    assert.deepEqual(writes().map((call) => call.args), [["group", "modify", "devs", "--users=alice"]]);
  });

  test("group gid change gets 400", async () => {
    const response = await t.request("/config/osgroup/devs", { method: "POST", json: groupBody("devs", { gidNumber: 2001 }) });
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /gidNumber of OS group "devs" cannot be changed from 2000 to 2001/);
    assert.deepEqual(writes(), []);
  });

  test("group unknown key gets 400", async () => {
    const response = await t.request("/config/osgroup/devs", { method: "POST", json: groupBody("devs", { memberUid: ["alice"] }) });
    assert.equal(response.status, 400);
    assert.match((await response.json()).message, /unknown key "config\.osgroup\.devs\.memberUid"/);
  });

  test("group delete gets 204 and 404", async () => {
    const response = await t.request("/config/osgroup/devs/_delete");
    assert.equal(response.status, 204);
    assert.deepEqual(writes().map((call) => call.args), [["group", "delete", "devs"]]);
    const missing = await t.request("/config/osgroup/nogroup/_delete");
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { message: 'OS group "nogroup" does not exist' });
  });

  test("provision token gets 403", async () => {
    const token = await t.services.tokens.issueProvision("node001");
    for (const path of ["/config/osuser", "/config/osgroup", "/config/osuser/alice/_delete"]) {
      const response = await t.request(path, { headers: { "x-access-tokens": token } });
      assert.equal(response.status, 403, path);
    }
    assert.deepEqual(t.hardware.calls, []);
  });

  test("unsupported methods get 405", async () => {
    assert.equal((await t.request("/config/osuser", { method: "POST", json: {} })).status, 405);
    assert.equal((await t.request("/config/osuser/alice/_delete", { method: "POST", json: {} })).status, 405);
    assert.equal((await t.request("/config/osgroup/devs/_delete", { method: "POST", json: {} })).status, 405);
  });
});
