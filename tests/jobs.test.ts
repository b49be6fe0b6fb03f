import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { job } from "../lib/db/schema/index.ts";
import { createJob, failInterruptedJobs, runJob } from "../lib/jobs.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

describe("jobs and rolling status", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  const poll = async (path: string) => {
    const response = await t.request(path, { headers: { "x-access-tokens": "" } });
    return { status: response.status, body: await response.json() };
  };

  test("a second request for the same operation joins the queued job", async () => {
    const first = await createJob(t.db, t.clock, { kind: "pack", object: "compute-image" });
    const second = await createJob(t.db, t.clock, { kind: "pack", object: "compute-image" });
    const other = await createJob(t.db, t.clock, { kind: "pack", object: "other-image" });
    assert.equal(first.existing, false);
    assert.equal(second.existing, true);
    assert.equal(second.requestId, first.requestId);
    assert.notEqual(other.requestId, first.requestId);
  });

  test("status returns unread lines, then nothing new, then 404 after the end", async () => {
    const { requestId } = await createJob(t.db, t.clock, { kind: "power", object: "node[001-002]" });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const run = runJob(t.db, t.clock, requestId, async (reporter) => {
      await reporter.info("node001: on");
      await reporter.error("node002: BMC 10.148.0.2 timed out");
      await gate;
    });

    await new Promise((resolve) => setTimeout(resolve, 50));
    const firstPoll = await poll(`/config/status/${requestId}`);
    assert.equal(firstPoll.status, 200);
    assert.equal(firstPoll.body.message, "2026-01-01 00:00:00 :: node001: on;;2026-01-01 00:00:00 :: node002: BMC 10.148.0.2 timed out");
    assert.equal(firstPoll.body.status, 500);

    const quiet = await poll(`/service/status/${requestId}`);
    assert.deepEqual(quiet, { status: 200, body: { message: "", status: 200 } });

    release();
    await run;
    const [row] = await t.db.orm.select().from(job).where(eq(job.request_id, requestId));
    assert.equal(row.state, "done");
    assert.equal((await poll(`/control/status/${requestId}`)).status, 404);
    assert.deepEqual(await poll(`/config/status/${requestId}`), { status: 404, body: { message: "No data for this request" } });
  });

  test("a job whose work throws ends failed with the reason", async () => {
    const { requestId } = await createJob(t.db, t.clock, { kind: "pack", object: "broken-image" });
    await runJob(t.db, t.clock, requestId, () => Promise.reject(new Error("tar exited with code 2")));
    const result = await poll(`/config/status/${requestId}`);
    assert.equal(result.body.status, 500);
    assert.match(result.body.message, /failed: tar exited with code 2/);
  });

  test("a restart marks interrupted jobs as failed", async () => {
    const { requestId } = await createJob(t.db, t.clock, { kind: "pack", object: "stuck-image" });
    assert.ok((await failInterruptedJobs(t.db, t.clock)) >= 1);
    const [row] = await t.db.orm.select().from(job).where(eq(job.request_id, requestId));
    assert.equal(row.state, "failed");
    assert.match((await poll(`/config/status/${requestId}`)).body.message, /interrupted/);
  });

  test("an unknown request id gets 404", async () => {
    assert.equal((await poll("/config/status/unknown")).status, 404);
  });
});

describe("monitor queue and status lists", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("the queue lists queued jobs and the status list their lines", async () => {
    const { requestId } = await createJob(t.db, t.clock, { kind: "pack", object: "compute-image", username: "luna" });
    const queue = (await (await t.request("/monitor/queue")).json()).monitor.queue;
    assert.equal(queue.length, 1);
    assert.equal(queue[0].request_id, requestId);
    assert.equal(queue[0].status, "queued");
    assert.equal(queue[0].task, "pack compute-image");

    await runJob(t.db, t.clock, requestId, (reporter) => reporter.info("packing osimage compute-image"));
    assert.deepEqual((await (await t.request("/monitor/queue")).json()).monitor.queue, []);
    const status = (await (await t.request("/monitor/status")).json()).monitor.status;
    assert.equal(status[0].request_id, requestId);
    assert.equal(status[0].message, "packing osimage compute-image");
    assert.equal(status[0].username_initiator, "luna");
  });

  test("both lists need an admin token", async () => {
    assert.equal((await t.request("/monitor/queue", { headers: { "x-access-tokens": "" } })).status, 401);
    assert.equal((await t.request("/monitor/status", { headers: { "x-access-tokens": "" } })).status, 401);
  });
});
