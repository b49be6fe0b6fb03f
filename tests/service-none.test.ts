import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { flushServiceRegeneration, scheduleServiceRegeneration } from "../lib/dhcp-dns-regeneration.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

describe("services with COMMAND none", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp({ configExtra: "[SERVICES]\nCOMMAND = none\n" })));
  after(() => t.close());

  test("regeneration writes files but runs no service command", async () => {
    scheduleServiceRegeneration(t.services, "test");
    await flushServiceRegeneration(t.services);
    assert.ok(!t.hardware.calls.some((spec) => spec.args.includes("reload")), "a reload ran");
  });

  test("the monitor reports that no service command is configured", async () => {
    const response = await t.request("/monitor/service/dhcp");
    assert.equal(response.status, 503);
    assert.match(JSON.stringify(await response.json()), /COMMAND is none/);
  });
});
