import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ensureKeyFile, SecretCipher, SecretDecryptionError } from "../lib/secrets.ts";

describe("SecretCipher", () => {
  const directory = mkdtempSync(join(tmpdir(), "luna2-cipher-"));
  const keyfile = join(directory, "ssl", "luna.key");
  const otherKeyfile = join(directory, "other.key");
  ensureKeyFile(keyfile);
  ensureKeyFile(otherKeyfile);
  const cipher = new SecretCipher(keyfile);
  after(() => rmSync(directory, { recursive: true, force: true }));

  test("key file is created with mode 0600", () => {
    assert.equal(statSync(keyfile).mode & 0o777, 0o600);
  });

  test("round trip returns the plaintext exactly", async () => {
    for (const plaintext of ["", "c2VjcmV0", "line\nwith 'quotes' and \"more\" ✓ \u0000 end  "]) {
      assert.equal(await cipher.decrypt(await cipher.encrypt(plaintext)), plaintext);
    }
  });

  test("same plaintext encrypts differently each time", async () => {
    const first = await cipher.encrypt("same");
    const second = await cipher.encrypt("same");
    assert.notEqual(first, second);
    assert.ok(!first.includes("same"));
  });

  test("every flipped byte is detected", async () => {
    const stored = await cipher.encrypt("tamper me");
    const bytes = Buffer.from(stored.slice(3), "base64");
    for (let index = 0; index < bytes.length; index++) {
      const altered = Buffer.from(bytes);
      altered[index] ^= 0x80;
      await assert.rejects(cipher.decrypt("v1:" + altered.toString("base64")), SecretDecryptionError, `byte ${index}`);
    }
  });

  test("another key is rejected", async () => {
    const stored = await new SecretCipher(otherKeyfile).encrypt("other");
    await assert.rejects(cipher.decrypt(stored), SecretDecryptionError);
  });

  test("values not in the v1 format are rejected", async () => {
    for (const stored of ["plaintext", "gAAAAABfernet", "v1:", "v1:not base64!", "v1:" + Buffer.alloc(20).toString("base64")]) {
      await assert.rejects(cipher.decrypt(stored), SecretDecryptionError, stored);
    }
  });

  test("key file of the wrong length is rejected", () => {
    const short = join(directory, "short.key");
    writeFileSync(short, Buffer.alloc(16).toString("base64"));
    assert.throws(() => new SecretCipher(short), /must hold 32 bytes/);
  });
});
