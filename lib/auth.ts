import { timingSafeEqual, createHash } from "node:crypto";
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import type { Clock } from "./clock.ts";
import { forbidden, unauthorized } from "./errors.ts";

/** Request header that carries the token, as luna2-cli sends it. */
export const TOKEN_HEADER = "x-access-tokens";

/** Lifetime of the provision token embedded in boot and install scripts. */
export const PROVISION_TOKEN_SECONDS = 3600;

/** Seconds a provision token is handed out again before a new one is signed. */
export const PROVISION_TOKEN_REUSE_SECONDS = 300;

/** Nodes whose provision tokens are kept; past this the cache starts over. */
const MAX_CACHED_PROVISION_TOKENS = 100_000;

/** Identity of the caller of a request, as its token decides it. */
export type Caller =
  | { kind: "anonymous" }
  | { kind: "admin"; userId: number }
  | { kind: "provision"; node: string };

/** Signs and checks HS256 tokens with the cluster's SECRET_KEY. */
export class TokenService {
  /** Imported once: jose would import raw key bytes again for every token it signs or checks. */
  readonly #key: Promise<CryptoKey>;
  readonly #expirySeconds: number;
  readonly #clock: Clock;
  readonly #provisionTokens = new Map<string, { token: string; issued: number }>();

  constructor(secretKey: string, expirySeconds: number, clock: Clock) {
    this.#key = crypto.subtle.importKey("raw", new TextEncoder().encode(secretKey), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    this.#expirySeconds = expirySeconds;
    this.#clock = clock;
  }

  #nowSeconds(): number {
    return Math.floor(this.#clock.now() / 1000);
  }

  /** Issues an admin token with the claims the original daemon uses: `id` and `exp`. */
  async issueAdmin(userId = 0): Promise<string> {
    return new SignJWT({ id: userId })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setExpirationTime(this.#nowSeconds() + this.#expirySeconds)
      .sign(await this.#key);
  }

  /** Issues a token that is valid only for one node's own install calls. */
  async issueProvision(node: string, seconds = PROVISION_TOKEN_SECONDS): Promise<string> {
    return new SignJWT({ node, scope: "provision" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setExpirationTime(this.#nowSeconds() + seconds)
      .sign(await this.#key);
  }

  /**
   * Returns a provision token for `node` for boot and install scripts, reusing one issued in the
   * last PROVISION_TOKEN_REUSE_SECONDS, so it still has most of its hour to run. A node that
   * retries its boot during a storm then costs no new signature.
   */
  async provisionTokenFor(node: string): Promise<string> {
    const now = this.#nowSeconds();
    const cached = this.#provisionTokens.get(node);
    if (cached && now - cached.issued < PROVISION_TOKEN_REUSE_SECONDS) return cached.token;

    const token = await this.issueProvision(node);
    if (this.#provisionTokens.size >= MAX_CACHED_PROVISION_TOKENS) this.#provisionTokens.clear();
    this.#provisionTokens.set(node, { token, issued: now });
    return token;
  }

  /**
   * Verifies a token and returns its caller. Throws `unauthorized` with the original daemon's
   * messages for a missing, malformed, forged or expired token.
   */
  async verify(token: string | undefined | null): Promise<Caller> {
    if (!token) throw unauthorized("A valid token is missing");
    let payload;
    try {
      ({ payload } = await jwtVerify(token, await this.#key, {
        algorithms: ["HS256"],
        currentDate: new Date(this.#clock.now()),
        requiredClaims: ["exp"],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JOSEError || error instanceof TypeError) throw unauthorized("Token is invalid");
      throw error;
    }
    if (payload.scope === "provision") {
      if (typeof payload.node !== "string" || payload.node === "") throw unauthorized("Token is invalid");
      return { kind: "provision", node: payload.node };
    }
    if (payload.scope !== undefined) throw unauthorized("Token is invalid");
    return { kind: "admin", userId: typeof payload.id === "number" ? payload.id : 0 };
  }
}

/** Compares two strings in time that does not depend on where they differ. */
export function constantTimeEqual(actual: string, expected: string): boolean {
  const actualDigest = createHash("sha256").update(actual).digest();
  const expectedDigest = createHash("sha256").update(expected).digest();
  return timingSafeEqual(actualDigest, expectedDigest);
}

/** Rejects a caller that is not an admin, with the original daemon's messages. */
export function requireAdmin(caller: Caller): void {
  if (caller.kind === "admin") return;
  if (caller.kind === "provision") throw forbidden("Token is not permitted for this endpoint");
  throw unauthorized("A valid token is missing");
}

/** Rejects a caller that is neither an admin nor holding the provision token of `node`. */
export function requireAdminOrNode(caller: Caller, node: string): void {
  if (caller.kind === "admin") return;
  if (caller.kind === "provision") {
    if (caller.node === node) return;
    throw forbidden("Token is not valid for this node");
  }
  throw unauthorized("A valid token is missing");
}
