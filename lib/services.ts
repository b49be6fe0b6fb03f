import type { Logger } from "@logtape/logtape";
import { TokenService } from "./auth.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { Database } from "./db/database.ts";
import type { Hardware } from "./hardware/index.ts";
import { HaAgent } from "./ha.ts";
import { logger } from "./log.ts";
import { SecretCipher } from "./secrets.ts";
import { Templates } from "./templates.ts";

/** Everything a route handler may use, built once per app. */
export interface Services {
  config: Config;
  db: Database;
  hardware: Hardware;
  clock: Clock;
  tokens: TokenService;
  log: Logger;
  templates: Templates;
  /** Encrypts node and group secrets with the key in `config.files.keyfile`. */
  secrets: SecretCipher;
  /** This controller's master lease; started by main.ts when [HA] ENABLED is set. */
  ha: HaAgent;
}

/** Arguments of the app factory; the clock defaults to the wall clock. */
export interface ServiceOptions {
  config: Config;
  db: Database;
  hardware: Hardware;
  clock?: Clock;
  templates?: Templates;
}

/** Builds the services shared by all handlers of one app. */
export function createServices(options: ServiceOptions): Services {
  const clock = options.clock ?? systemClock;
  const services: Services = {
    config: options.config,
    db: options.db,
    hardware: options.hardware,
    clock,
    tokens: new TokenService(options.config.api.secretKey, options.config.api.expirySeconds, clock),
    log: logger("app"),
    templates: options.templates ?? new Templates(options.config.templates.directory),
    secrets: new SecretCipher(options.config.files.keyfile),
    ha: undefined as unknown as HaAgent,
  };
  services.ha = new HaAgent(services);
  return services;
}

/** True when this controller runs work that must run once per cluster: always without HA, else only as master. */
export function runsSingletonWork(services: Services): boolean {
  return !services.config.ha.enabled || services.ha.isMaster();
}
