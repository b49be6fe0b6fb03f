import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { applyListenFlag, ConfigError, loadConfig, locateConfig, parseConfig } from "../lib/config.ts";

const base = "[API]\nUSERNAME = luna\nPASSWORD = p\nSECRET_KEY = k\n";

describe("parseConfig", () => {
  test("applies defaults and resolves paths against the file's folder", () => {
    const config = parseConfig(base, "/etc/luna/luna.ini");
    assert.equal(config.api.listenHost, "127.0.0.1");
    assert.equal(config.api.listenPort, 7050);
    assert.equal(config.api.expirySeconds, 3600);
    assert.equal(config.database.url, "file:/etc/luna/luna.db");
    assert.equal(config.files.keyfile, "/etc/luna/luna.key");
    assert.equal(config.dhcp.server, "isc");
  });

  const durations: [string, number][] = [["2h", 7200], ["30m", 1800], ["45s", 45], ["3", 10800]];
  for (const [value, seconds] of durations) {
    test(`EXPIRY ${value} is ${seconds} seconds`, () => {
      assert.equal(parseConfig(base.replace("SECRET_KEY = k", `SECRET_KEY = k\nEXPIRY = ${value}`), "/x/luna.ini").api.expirySeconds, seconds);
    });
  }

  const invalid: [string, string, RegExp][] = [
    ["[API]", "EXPIRY = soon", /Invalid value "soon" for \[API\] EXPIRY in \/x\/luna\.ini: expected a positive duration/],
    ["[API]", "LISTEN = 127.0.0.1:99999", /\[API\] LISTEN/],
    ["[DHCP]", "SERVER = dnsmasq", /Invalid value "dnsmasq" for \[DHCP\] SERVER in \/x\/luna\.ini: expected one of isc, kea/],
    ["[DATABASE]", "URL = postgres://db", /\[DATABASE\] URL/],
    ["[BMCCONTROL]", "BMC_BATCH_SIZE = 0", /\[BMCCONTROL\] BMC_BATCH_SIZE .*from 1 to 1000/],
    ["[SECRETS]", "ENCRYPT_SECRETS = maybe", /\[SECRETS\] ENCRYPT_SECRETS .*yes or no/],
    ["[LOGGER]", "LEVEL = loud", /\[LOGGER\] LEVEL/],
  ];
  for (const [section, line, expected] of invalid) {
    test(`rejects ${section} ${line}`, () => {
      assert.throws(() => parseConfig(`${base}${section}\n${line}\n`, "/x/luna.ini"), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, expected);
        return true;
      });
    });
  }

  test("rejects a missing PASSWORD naming section and key", () => {
    assert.throws(() => parseConfig("[API]\nUSERNAME = luna\nSECRET_KEY = k\n", "/x/luna.ini"), /Missing value for \[API\] PASSWORD in \/x\/luna\.ini/);
  });

  test("COMMAND none turns service reloads off", () => {
    assert.equal(parseConfig(`${base}[SERVICES]\nCOMMAND = none\n`, "/x/luna.ini").services.command, null);
    assert.equal(parseConfig(base, "/x/luna.ini").services.command, "/usr/bin/systemctl");
  });

  test("keeps a password with spaces, quotes and symbols as written", () => {
    const config = parseConfig("[API]\nUSERNAME = luna\nPASSWORD = a b'c$d;e\nSECRET_KEY = k\n", "/x/luna.ini");
    assert.equal(config.api.password, "a b'c$d;e");
  });
});

describe("first start", () => {
  const directory = mkdtempSync(join(tmpdir(), "luna2-config-"));
  after(() => rmSync(directory, { recursive: true, force: true }));

  test("locateConfig prefers --config, then the environment, then the generated file", () => {
    assert.equal(locateConfig(["--config", "a.ini"], {}, "/w"), "/w/a.ini");
    assert.equal(locateConfig(["--config=/etc/b.ini"], {}, "/w"), "/etc/b.ini");
    assert.equal(locateConfig([], { LUNA2_CONFIG: "c.ini" }, "/w"), "/w/c.ini");
    assert.equal(locateConfig([], {}, "/w"), "/w/luna2-state/luna.ini");
  });

  test("generates random credentials into a file readable only by its owner", () => {
    const file = join(directory, "state", "luna.ini");
    const config = loadConfig(file, { allowGenerate: true });
    assert.equal(config.generated, true);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(config.api.password, /^[0-9a-f]{32}$/);
    assert.match(config.api.secretKey, /^[0-9a-f]{64}$/);
    assert.equal(config.services.command, null, "the generated files are not the services' files, so nothing is reloaded");
    assert.equal(config.stateDirectory, join(directory, "state"));

    const again = loadConfig(file, { allowGenerate: true });
    assert.equal(again.generated, false);
    assert.equal(again.api.password, config.api.password);
    assert.ok(readFileSync(file, "utf8").includes(config.api.secretKey));
  });

  test("two first starts generate different secrets", () => {
    const one = loadConfig(join(directory, "one", "luna.ini"), { allowGenerate: true });
    const two = loadConfig(join(directory, "two", "luna.ini"), { allowGenerate: true });
    assert.notEqual(one.api.secretKey, two.api.secretKey);
    assert.notEqual(one.api.password, two.api.password);
  });

  test("--listen overrides [API] LISTEN and is checked", () => {
    const config = parseConfig(base, "/x/luna.ini");
    assert.equal(applyListenFlag(config, ["--listen", "127.0.0.1:7099"]).api.listenPort, 7099);
    assert.equal(applyListenFlag(config, ["--listen=[::1]:7098"]).api.listenHost, "::1");
    assert.equal(applyListenFlag(config, []), config);
    assert.throws(() => applyListenFlag(config, ["--listen", "nowhere"]), /Invalid value "nowhere" for \[--listen\] LISTEN in the command line/);
  });

  test("missing named file is an error", () => {
    assert.throws(() => loadConfig(join(directory, "missing.ini"), { allowGenerate: false }), /does not exist/);
  });
});
