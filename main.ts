import { mkdirSync } from "node:fs";
import { serve } from "@hono/node-server";
import { createApp } from "./lib/app.ts";
import { bootstrapIfEmpty } from "./lib/bootstrap.ts";
import { applyListenFlag, ConfigError, loadConfig, locateConfig, CONFIG_ENV } from "./lib/config.ts";
import { openDatabase, redactUrl } from "./lib/db/database.ts";
import { systemHardware } from "./lib/hardware/index.ts";
import { describeError, logger, setupLogging, stopLogging } from "./lib/log.ts";
import { systemClock } from "./lib/clock.ts";
import { ensureKeyFile } from "./lib/secrets.ts";
import { failInterruptedJobs } from "./lib/jobs.ts";
import { JournalWorker } from "./lib/journal.ts";
import { scheduleServiceRegeneration } from "./lib/dhcp-dns-regeneration.ts";
import { regenerateDhcp } from "./lib/dhcp-service.ts";

const log = logger("main");

/** Starts the daemon: config, logging, database, bootstrap, HTTP listener, signal handling. */
async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const named = argv.some((argument) => argument.startsWith("--config")) || Boolean(process.env[CONFIG_ENV]);
  const file = locateConfig(argv, process.env, process.cwd());
  const config = applyListenFlag(loadConfig(file, { allowGenerate: !named }), argv);
  await setupLogging(config.logger.level, config.logger.logfile);
  if (config.generated) {
    log.warning("Generated a new configuration with random API credentials at {file}; the password is in that file", { file });
  }
  log.info("Using configuration {file}", { file });

  ensureKeyFile(config.files.keyfile);
  for (const directory of [config.files.imageFiles, config.files.imageDirectory, config.files.tmpDirectory]) mkdirSync(directory, { recursive: true });
  // libSQL's native replication code prints its own tracing lines to stdout. Failures that
  // matter reach this daemon's log as errors of the calls that hit them.
  process.env.RUST_LOG ??= "off";
  const db = await openDatabase(config.database);
  db.controllerName = config.ha.controllerName;
  log.info("Opened database {url}", { url: redactUrl(config.database.url) });
  await bootstrapIfEmpty(db, config, systemClock.now());
  await failInterruptedJobs(db, systemClock, config.ha.controllerName);

  const { app, services } = createApp({ config, db, hardware: systemHardware });
  const journal = new JournalWorker(services);
  const regenerate = () => {
    scheduleServiceRegeneration(services, "journal task from a peer controller");
    return Promise.resolve();
  };
  journal.register("regenerate_dhcp", regenerate);
  journal.register("regenerate_dns", regenerate);
  journal.start();
  scheduleServiceRegeneration(services, "daemon start");
  // A new master starts serving DHCP with the current configuration.
  services.ha.onRoleChange((master) => {
    if (master) void regenerateDhcp(services, { mode: "always" }).catch((error) => log.error("Cannot start DHCP as the new master: {error}", { error: describeError(error) }));
  });
  if (config.ha.enabled) await services.ha.start();
  const listener = await listen(app.fetch, config.api.listenHost, config.api.listenPort);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("Received {signal}: finishing requests in flight", { signal });
    await listener.close();
    await journal.stop();
    await services.ha.stop();
    db.close();
    log.info("Stopped");
    await stopLogging();
    process.exit(0);
  };
  // A failure in background work must not stop a controller that nodes boot from.
  process.on("unhandledRejection", (reason) => log.error("Unhandled failure in background work: {error}", { error: describeError(reason) }));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

/** Deno's own HTTP server, used when the daemon runs on Deno. */
interface DenoRuntime {
  serve(
    options: { hostname: string; port: number; onListen(address: { hostname: string; port: number }): void },
    handler: (request: Request, info: unknown) => Response | Promise<Response>,
  ): { shutdown(): Promise<void>; finished: Promise<void> };
}

/**
 * Starts the HTTP listener: Deno.serve on Deno, @hono/node-server on Node. `close` stops
 * accepting connections and resolves once the requests in flight have their responses.
 */
async function listen(
  fetch: (request: Request, env?: unknown) => Response | Promise<Response>,
  hostname: string,
  port: number,
): Promise<{ close(): Promise<void> }> {
  const deno = (globalThis as { Deno?: DenoRuntime }).Deno;
  const announce = (address: string, boundPort: number) => log.info("Listening on {address}:{port}", { address, port: boundPort });
  if (deno) {
    try {
      const server = deno.serve({ hostname, port, onListen: (address) => announce(address.hostname, address.port) }, (request, info) => fetch(request, info));
      return { close: () => server.shutdown() };
    } catch (error) {
      throw new Error(`Cannot listen on ${hostname}:${port}: ${(error as Error).message}`);
    }
  }

  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, (info) => {
      announce(info.address, info.port);
      resolve({
        close: () =>
          new Promise<void>((closed) => {
            server.close(() => closed());
            // Keep-alive connections would hold close() open; idle ones are closed now.
            (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
          }),
      });
    });
    server.on("error", (error) => reject(new Error(`Cannot listen on ${hostname}:${port}: ${error.message}`)));
  });
}

main().catch(async (error) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`luna2-daemon: ${error.message}\n`);
  } else {
    log.fatal("Start-up failed: {error}", { error: describeError(error) });
    await stopLogging();
    process.stderr.write(`luna2-daemon: start-up failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  process.exit(1);
});
