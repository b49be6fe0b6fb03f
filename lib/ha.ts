import { and, eq, lt, or } from "drizzle-orm";
import { type Database, isReachable, redactUrl } from "./db/database.ts";
import { controller, haLease } from "./db/schema/index.ts";
import { unavailable } from "./errors.ts";
import { describeError, logger } from "./log.ts";
import type { Services } from "./services.ts";

const log = logger("ha");

/** The master lease as stored. */
export interface LeaseState {
  holder: string | null;
  expiresAt: number;
  overrule: boolean;
  updated: number;
}

/** Reads the lease row; a database without one has no master. */
export async function readLease(db: Database): Promise<LeaseState> {
  const [row] = await db.orm.select().from(haLease).where(eq(haLease.id, 1));
  if (!row) return { holder: null, expiresAt: 0, overrule: false, updated: 0 };
  return { holder: row.holder, expiresAt: row.expires_at, overrule: row.overrule, updated: row.updated };
}

/**
 * Takes or renews the master lease for `name` in one atomic update. It succeeds when `name`
 * already has the lease, when the lease has lapsed, or when `force` is set. Returns true when
 * `name` has the lease afterwards.
 */
export async function acquireLease(db: Database, name: string, now: number, leaseMilliseconds: number, force = false): Promise<boolean> {
  return db.write(async (tx) => {
    await tx.insert(haLease).values({ id: 1, holder: null, expires_at: 0, updated: 0 }).onConflictDoNothing();
    const claimable = force ? eq(haLease.id, 1) : and(eq(haLease.id, 1), or(eq(haLease.holder, name), lt(haLease.expires_at, now)));
    const updated = await tx
      .update(haLease)
      .set({ holder: name, expires_at: now + leaseMilliseconds, updated: now })
      .where(claimable)
      .returning({ holder: haLease.holder });
    return updated.length === 1;
  });
}

/** Gives the lease up at once if `name` holds it, so another controller need not wait for it to lapse. */
export async function releaseLease(db: Database, name: string): Promise<void> {
  await db.write((tx) => tx.update(haLease).set({ expires_at: 0 }).where(and(eq(haLease.id, 1), eq(haLease.holder, name))));
}

/** Records this controller, its endpoint and a heartbeat in the controller table. */
export async function registerController(db: Database, name: string, endpoint: string | null, now: number): Promise<void> {
  await db.write(async (tx) => {
    const [existing] = await tx.select({ id: controller.id }).from(controller).where(eq(controller.hostname, name));
    if (existing) await tx.update(controller).set({ endpoint, seen: now }).where(eq(controller.id, existing.id));
    else await tx.insert(controller).values({ hostname: name, endpoint, seen: now });
  });
}

/**
 * Keeps this controller's master lease and heartbeat: every third of the lease time it renews
 * the lease (or takes it when it lapsed) and records whether it is master. Singleton work checks
 * `isMaster()` before it runs.
 */
export class HaAgent {
  readonly #services: Services;
  #master = false;
  #overrule = false;
  #timer: ReturnType<typeof setInterval> | null = null;
  #lastError: string | null = null;
  readonly #listeners: ((master: boolean) => void)[] = [];

  constructor(services: Services) {
    this.#services = services;
  }

  get name(): string {
    return this.#services.config.ha.controllerName;
  }

  get leaseMilliseconds(): number {
    return this.#services.config.ha.leaseSeconds * 1000;
  }

  isMaster(): boolean {
    return this.#master;
  }

  /** Calls `listener` whenever this controller gains or loses the master role. */
  onRoleChange(listener: (master: boolean) => void): void {
    this.#listeners.push(listener);
  }

  #setMaster(master: boolean): void {
    if (master === this.#master) return;
    this.#master = master;
    for (const listener of this.#listeners) listener(master);
  }

  /** True after /ha/overrule/_set: this controller may take the lease without a current replica. */
  get overrule(): boolean {
    return this.#overrule;
  }

  /** The last error of a lease renewal, or null after a successful one. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Registers the controller, tries the lease once, then keeps renewing it in the background. */
  async start(): Promise<void> {
    const { config } = this.#services;
    await registerController(this.#services.db, this.name, config.ha.endpoint, this.#services.clock.now());
    await this.tick();
    this.#timer = setInterval(() => void this.tick(), Math.max(200, Math.floor(this.leaseMilliseconds / 3)));
    this.#timer.unref?.();
  }

  /** Stops renewing and releases the lease, so a peer takes over without waiting for it to lapse. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#master) await releaseLease(this.#services.db, this.name).catch(() => undefined);
    this.#setMaster(false);
  }

  /** Renews or takes the lease once and records the outcome. */
  async tick(): Promise<void> {
    const now = this.#services.clock.now();
    try {
      await this.#checkPrimary();
      const held = await acquireLease(this.#services.db, this.name, now, this.leaseMilliseconds);
      await registerController(this.#services.db, this.name, this.#services.config.ha.endpoint, now);
      if (held !== this.#master) log.info(held ? "Controller {name} became master" : "Controller {name} is no longer master", { name: this.name });
      this.#setMaster(held);
      this.#lastError = null;
    } catch (error) {
      this.#lastError = error instanceof Error ? error.message : String(error);
      // An overruled master keeps its role without the primary: that is what overrule is for.
      if (this.#overrule && this.#master) return;
      // Without a reachable primary the lease cannot be renewed; stop acting as master before
      // it lapses elsewhere, so two controllers never both run singleton work.
      if (this.#master) log.warning("Controller {name} gives up the master role: {error}", { name: this.name, error: describeError(error) });
      this.#setMaster(false);
    }
  }

  /**
   * Takes the lease now, even from another holder. Without a reachable primary this throws
   * `unavailable`, unless an overrule is set: then this controller acts as master on its own.
   */
  async takeover(): Promise<void> {
    try {
      await this.#checkPrimary();
      await acquireLease(this.#services.db, this.name, this.#services.clock.now(), this.leaseMilliseconds, true);
    } catch (error) {
      if (!this.#overrule) {
        throw unavailable(`Cannot take the master role: ${(error as Error).message}; use /ha/overrule/_set to force it`, error);
      }
      log.warning("Controller {name} takes the master role without the primary (overrule): {error}", { name: this.name, error: describeError(error) });
    }
    this.#setMaster(true);
    log.info("Controller {name} took the master role on request", { name: this.name });
  }

  /** Allows the next takeover without a current replica; for disaster recovery. */
  setOverrule(): void {
    this.#overrule = true;
    log.warning("Overrule set on controller {name}: it may take the master role without a current replica", { name: this.name });
  }

  /**
   * Checks that the primary responds. The replica itself is kept current by libSQL's periodic
   * sync. Calling sync() here would block the event loop for the whole connect timeout while the
   * primary is down, because the native call is synchronous.
   */
  async #checkPrimary(): Promise<void> {
    const primary = this.#services.db.primaryUrl;
    if (primary !== null && !(await isReachable(primary))) throw new Error(`the primary database ${redactUrl(primary)} cannot be reached`);
  }
}
