import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { serve } from "@hono/node-server";
import { freePort, ON_DENO, ROOT } from "./processes.ts";
import type { TestApp } from "./helpers.ts";

/** Where a guest reaches the daemon: QEMU forwards this guest address to 127.0.0.1 on the host. */
export const GUEST_DAEMON_ADDRESS = "10.0.2.100";

/** Kernel and initramfs built by scripts/build-boot-assets.sh, plus the busybox binary it extracted. */
export interface BootAssets {
  directory: string;
  kernel: string;
  initrd: string;
  /** Static busybox from Debian's busybox-static, used on the host as QEMU's connection relay. */
  busybox: string;
  /** Kernel package and version, e.g. `linux-image-6.1.0-57-amd64 6.1.192-3`. */
  kernelPackage: string;
}

/**
 * Runs scripts/build-boot-assets.sh, which downloads Debian's kernel and busybox on its first
 * run and reuses .cache/boot-assets afterwards.
 */
export async function buildBootAssets(timeoutMs = 300_000): Promise<BootAssets> {
  const child = spawn("bash", [join(ROOT, "scripts", "build-boot-assets.sh")], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | string>((resolve) => child.on("exit", (exitCode, signal) => resolve(exitCode ?? signal ?? "unknown")));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`scripts/build-boot-assets.sh failed with ${code}:\n${stderr}`);

  const lines = stdout.trim().split("\n");
  const directory = resolve(ROOT, lines[lines.length - 1]);
  return {
    directory,
    kernel: join(directory, "vmlinuz"),
    initrd: join(directory, "initrd.img"),
    busybox: join(directory, "busybox"),
    kernelPackage: readFileSync(join(directory, "kernel-package"), "utf8").trim(),
  };
}

/** One request the daemon served, as the recording wrapper saw it. */
export interface RecordedRequest {
  method: string;
  /** Path without the query, still percent-encoded as the client sent it. */
  path: string;
  status: number;
  /** Host header, which is what the guest used to reach the daemon. */
  host: string | null;
  /** Body of text responses other than /files downloads; null otherwise. */
  body: string | null;
  /** Milliseconds since the daemon started. */
  at: number;
}

/** The daemon of a TestApp listening on 127.0.0.1. */
export interface ListeningDaemon {
  port: number;
  /** Every request served so far, in the order the responses were ready. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Deno's own HTTP server, which main.ts uses when the daemon runs on Deno. */
interface DenoServe {
  serve(
    options: { hostname: string; port: number; onListen(address: unknown): void },
    handler: (request: Request, info: unknown) => Promise<Response>,
  ): { shutdown(): Promise<void> };
}

/**
 * Serves `t.app` on a free port of 127.0.0.1 with the server main.ts uses (Deno.serve on Deno,
 * @hono/node-server on Node) and records each request with its status. The recording wraps
 * `fetch`, so the app still receives the connection info in its env, where the guest's
 * connections come from 127.0.0.1.
 */
export async function listenDaemon(t: TestApp): Promise<ListeningDaemon> {
  const port = await freePort();
  const requests: RecordedRequest[] = [];
  const started = performance.now();

  const fetch = async (request: Request, env: unknown): Promise<Response> => {
    const response = await t.app.fetch(request, env as never);
    const path = new URL(request.url).pathname;
    const contentType = response.headers.get("content-type") ?? "";
    let body: string | null = null;
    if (!path.startsWith("/files/") && (contentType.startsWith("text/") || contentType.includes("json"))) {
      body = await response.clone().text();
    }
    requests.push({ method: request.method, path, status: response.status, host: request.headers.get("host"), body, at: Math.round(performance.now() - started) });
    return response;
  };

  if (ON_DENO) {
    const deno = (globalThis as unknown as { Deno: DenoServe }).Deno;
    // Deno.serve has bound the port when it returns. The empty onListen drops its default banner.
    const server = deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, fetch);
    return { port, requests, close: () => server.shutdown() };
  }

  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const listening = serve({ fetch, hostname: "127.0.0.1", port }, () => resolve(listening));
  });
  return {
    port,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Options of one QEMU guest that boots from the network. */
export interface VmOptions {
  assets: BootAssets;
  /** Port of the daemon on 127.0.0.1; the guest reaches it as GUEST_DAEMON_ADDRESS:port. */
  port: number;
  mac: string;
  /** File the guest's serial console is written to. */
  serialLog: string;
  timeoutMs: number;
}

/** How a guest ended. */
export interface VmResult {
  /** QEMU's exit code, or the signal that ended it. */
  exit: number | string;
  timedOut: boolean;
  durationMs: number;
  /** Contents of the serial console log. */
  serial: string;
  /** QEMU's own stdout and stderr. */
  output: string;
}

/** A started guest; `result` settles when QEMU exits or was killed at the timeout. */
export interface RunningVm {
  child: ChildProcess;
  result: Promise<VmResult>;
  /** Kills QEMU by its process id if it still runs. */
  kill(): void;
}

/**
 * Builds QEMU's arguments: software emulation, the network as the only boot device, and a user
 * network with `restrict=on`, so the guest reaches nothing but the daemon. DHCP hands iPXE the
 * /boot URL as its boot file.
 *
 * Each guest connection to GUEST_DAEMON_ADDRESS:port starts one `busybox nc` relay to the
 * daemon (`guestfwd=...-cmd:`). A `-tcp:` target would not do: QEMU 7.2 opens that as a single
 * chardev connection at start-up, and a second guest connection (the boot chain makes several)
 * fails.
 */
export function qemuArguments(options: VmOptions): string[] {
  const daemon = `${GUEST_DAEMON_ADDRESS}:${options.port}`;
  const relay = `${options.assets.busybox} nc 127.0.0.1 ${options.port}`;
  return [
    "-machine", "pc,accel=tcg",
    "-m", "256",
    "-nodefaults",
    "-vga", "std",
    "-display", "none",
    "-no-reboot",
    "-netdev", `user,id=n0,restrict=on,guestfwd=tcp:${daemon}-cmd:${relay},bootfile=http://${daemon}/boot`,
    "-device", `virtio-net-pci,netdev=n0,mac=${options.mac}`,
    "-boot", "order=n,strict=on,reboot-timeout=0",
    "-serial", `file:${options.serialLog}`,
  ];
}

/**
 * Starts QEMU for one guest. It ends by itself when the guest powers off (or iPXE exits);
 * after `timeoutMs` it is killed by its process id and the result has `timedOut` set.
 */
export function startVm(options: VmOptions): RunningVm {
  const started = performance.now();
  const child = spawn("qemu-system-x86_64", qemuArguments(options), { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));

  let timedOut = false;
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs);

  const result = new Promise<VmResult>((resolve) => {
    const finish = (exit: number | string) => {
      clearTimeout(timer);
      let serial = "";
      try {
        serial = readFileSync(options.serialLog, "latin1");
      } catch {
        // QEMU stopped before it created the log, and `output` contains its error.
      }
      resolve({ exit, timedOut, durationMs: Math.round(performance.now() - started), serial, output });
    };
    child.on("exit", (code, signal) => finish(code ?? signal ?? "unknown"));
    child.on("error", (error) => finish(`spawn failed: ${error.message}`));
  });
  return { child, result, kill };
}

/** Returns the lines the test initramfs printed with its `LUNA-VM:` prefix, without the prefix. */
export function serialMarkers(serial: string): string[] {
  return [...serial.matchAll(/^LUNA-VM: (.*?)\r?$/gm)].map((match) => match[1]);
}
