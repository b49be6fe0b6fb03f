import { randomBytes, webcrypto } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Prefix of stored ciphertext, so a future key or cipher change can be recognised. */
const FORMAT = "v1:";

/** Creates the secrets key file (32 random bytes, base64) with mode 0600 if it does not exist. */
export function ensureKeyFile(path: string): void {
  if (existsSync(path)) return;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, randomBytes(KEY_BYTES).toString("base64") + "\n", { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
}

/** Thrown when stored ciphertext cannot be opened: altered data, another key, or an unknown format. */
export class SecretDecryptionError extends Error {
  constructor(reason: string, options?: ErrorOptions) {
    super(`Cannot decrypt stored secret: ${reason}`, options);
    this.name = "SecretDecryptionError";
  }
}

/** Encrypts and decrypts secret contents with AES-256-GCM under the key file's key. */
export class SecretCipher {
  readonly #key: Promise<CryptoKey>;

  constructor(keyfile: string) {
    const raw = Buffer.from(readFileSync(keyfile, "utf8").trim(), "base64");
    if (raw.length !== KEY_BYTES) throw new Error(`Key file ${keyfile} must hold ${KEY_BYTES} bytes in base64`);
    this.#key = webcrypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  }

  /** Returns `v1:` + base64(iv ‖ ciphertext ‖ tag); a fresh IV for every call. */
  async encrypt(plaintext: string): Promise<string> {
    const iv = randomBytes(IV_BYTES);
    const sealed = await webcrypto.subtle.encrypt({ name: "AES-GCM", iv }, await this.#key, new TextEncoder().encode(plaintext));
    return FORMAT + Buffer.concat([iv, Buffer.from(sealed)]).toString("base64");
  }

  /**
   * Reverses `encrypt`. Throws `SecretDecryptionError` when the data was altered, another key
   * was used or the value is not in the v1 format, so a caller never receives garbage.
   */
  async decrypt(stored: string): Promise<string> {
    if (!stored.startsWith(FORMAT)) throw new SecretDecryptionError("the value is not in the v1 format");
    const encoded = stored.slice(FORMAT.length);
    if (!BASE64.test(encoded)) throw new SecretDecryptionError("the value is not valid base64");
    const bytes = Buffer.from(encoded, "base64");
    if (bytes.length < IV_BYTES + TAG_BYTES) throw new SecretDecryptionError("the value is too short");

    let opened: ArrayBuffer;
    try {
      opened = await webcrypto.subtle.decrypt({ name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES) }, await this.#key, bytes.subarray(IV_BYTES));
    } catch (error) {
      throw new SecretDecryptionError("the data was altered or another key file was used", { cause: error });
    }
    return new TextDecoder("utf-8", { fatal: true }).decode(opened);
  }
}
