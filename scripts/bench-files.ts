// Measures how fast the daemon streams one large file from GET /files/{filename} compared with
// nginx serving the same file, both on 127.0.0.1 in the same run. Results: docs/benchmarks-files.md.
//
//   npx tsx scripts/bench-files.ts [--size-mib 1024] [--rounds 7] [--runtime node|deno]
//
// Needs nginx (Debian package nginx-light) and curl. Every server listens on 127.0.0.1 only, is
// started by this script and stopped by its process id. Exits 1 when the daemon's median rate is
// below MIN_RATIO of nginx's.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { once } from "node:events";

/** The daemon must reach this fraction of nginx's median rate. */
const MIN_RATIO = 0.8;
const ROOT = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const FILE_NAME = "bench-vmlinuz-1";
const CURL_MAX_SECONDS = 120;
const START_TIMEOUT_MS = 60_000;

interface Options {
  sizeMib: number;
  rounds: number;
  runtime: "node" | "deno";
}

function parseOptions(argv: string[]): Options {
  const options: Options = { sizeMib: 1024, rounds: 7, runtime: "node" };
  for (let index = 0; index < argv.length; index += 2) {
    const [flag, value] = [argv[index], argv[index + 1]];
    if (flag === "--size-mib" && /^\d+$/.test(value ?? "")) options.sizeMib = Number(value);
    else if (flag === "--rounds" && /^\d+$/.test(value ?? "")) options.rounds = Math.min(Number(value), 50);
    else if (flag === "--runtime" && (value === "node" || value === "deno")) options.runtime = value;
    else throw new Error(`Unknown or invalid option "${flag} ${value ?? ""}": use --size-mib N, --rounds N (at most 50), --runtime node|deno`);
  }
  return options;
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => done(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Writes `sizeMib` MiB of random data (one random MiB repeated) and reads it back to warm the page cache. */
async function writeTestFile(path: string, sizeMib: number): Promise<void> {
  const block = randomBytes(1024 * 1024);
  const stream = createWriteStream(path);
  for (let index = 0; index < sizeMib; index++) {
    if (!stream.write(block)) await once(stream, "drain");
  }
  stream.end();
  await once(stream, "finish");
  await run("cat", [path], { discardOutput: true });
}

function run(program: string, args: string[], options: { discardOutput?: boolean } = {}): Promise<string> {
  return new Promise((done, fail) => {
    if (options.discardOutput) {
      const child = spawn(program, args, { stdio: ["ignore", "ignore", "inherit"] });
      child.on("error", fail);
      child.on("exit", (code) => (code === 0 ? done("") : fail(new Error(`${program} exited with ${code}`))));
      return;
    }
    execFile(program, args, { maxBuffer: 1024 * 1024 }, (error, stdout) => (error ? fail(error) : done(stdout)));
  });
}

/** Starts a server and resolves once curl gets any HTTP response from `port`. */
async function startServer(program: string, args: string[], port: number, cwd: string): Promise<ChildProcess> {
  const child = spawn(program, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${program} exited with ${child.exitCode} before it listened: ${output}`);
    try {
      await run("curl", ["-s", "-o", "/dev/null", "--max-time", "2", `http://127.0.0.1:${port}/`]);
      return child;
    } catch {
      await new Promise((wait) => setTimeout(wait, 200));
    }
  }
  child.kill("SIGKILL");
  throw new Error(`${program} did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms: ${output}`);
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = once(child, "exit");
  process.kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, "SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Downloads `url` once with curl into /dev/null and returns bytes per second. */
async function download(url: string, expectedBytes: number): Promise<number> {
  const output = await run("curl", ["-s", "-f", "-o", "/dev/null", "--max-time", String(CURL_MAX_SECONDS), "-w", "%{size_download} %{time_total}", url]);
  const [bytes, seconds] = output.trim().split(" ").map(Number);
  if (bytes !== expectedBytes) throw new Error(`Downloaded ${bytes} bytes from ${url}, expected ${expectedBytes}`);
  return bytes / seconds;
}

/** Clock ticks per second of /proc/<pid>/stat times; 100 on Linux for x86-64 and arm64. */
const CLOCK_TICKS_PER_SECOND = 100;

/** Returns `pid` and all its descendants, from /proc/<pid>/task/<tid>/children (Linux). */
function processTree(pid: number): number[] {
  const tree = [pid];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return tree;
  }
  for (const task of tasks) {
    const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
    for (const child of children.split(" ").filter((item) => item !== "")) tree.push(...processTree(Number(child)));
  }
  return tree;
}

/** Returns the user plus system CPU seconds that `pid` and its descendants have used so far. */
function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const member of processTree(pid)) {
    // Fields 14 and 15 (utime, stime) follow the command name, which is in parentheses.
    const stat = readFileSync(`/proc/${member}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function nginxConfig(directory: string, filesDirectory: string, port: number): string {
  return [
    "daemon off;",
    // One process serving as the current user, so the temporary directory needs no wider permissions.
    "master_process off;",
    `pid ${join(directory, "nginx.pid")};`,
    `error_log ${join(directory, "nginx-error.log")} warn;`,
    "events { worker_connections 64; }",
    "http {",
    "  access_log off;",
    "  sendfile on;",
    "  tcp_nopush on;",
    `  client_body_temp_path ${join(directory, "nginx-body")};`,
    `  proxy_temp_path ${join(directory, "nginx-proxy")};`,
    `  fastcgi_temp_path ${join(directory, "nginx-fastcgi")};`,
    `  uwsgi_temp_path ${join(directory, "nginx-uwsgi")};`,
    `  scgi_temp_path ${join(directory, "nginx-scgi")};`,
    "  server {",
    `    listen 127.0.0.1:${port};`,
    `    location /files/ { alias ${filesDirectory}/; }`,
    "  }",
    "}",
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const directory = mkdtempSync(join(tmpdir(), "luna2-bench-files-"));
  chmodSync(directory, 0o700);
  const filesDirectory = join(directory, "files");
  mkdirSync(filesDirectory);
  const servers: ChildProcess[] = [];
  try {
    const size = options.sizeMib * 1024 * 1024;
    await writeTestFile(join(filesDirectory, FILE_NAME), options.sizeMib);

    const daemonPort = await freePort();
    const configFile = join(directory, "luna.ini");
    writeFileSync(
      configFile,
      [
        "[API]",
        "USERNAME = luna",
        `PASSWORD = ${randomBytes(12).toString("hex")}`,
        `SECRET_KEY = ${randomBytes(32).toString("hex")}`,
        `LISTEN = 127.0.0.1:${daemonPort}`,
        "[LOGGER]",
        "LEVEL = warning",
        "[FILES]",
        `IMAGE_FILES = ${filesDirectory}`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const daemon = options.runtime === "deno"
      ? [join(ROOT, "node_modules", ".bin", "deno"), ["run", "--allow-all", "--config", join(ROOT, "deno.json"), join(ROOT, "main.ts"), "--config", configFile]] as const
      : [join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "main.ts"), "--config", configFile]] as const;
    servers.push(await startServer(daemon[0], [...daemon[1]], daemonPort, directory));

    const nginxPort = await freePort();
    const nginxFile = join(directory, "nginx.conf");
    writeFileSync(nginxFile, nginxConfig(directory, filesDirectory, nginxPort));
    servers.push(await startServer("nginx", ["-c", nginxFile, "-p", directory], nginxPort, directory));

    const daemonUrl = `http://127.0.0.1:${daemonPort}/files/${FILE_NAME}`;
    const nginxUrl = `http://127.0.0.1:${nginxPort}/files/${FILE_NAME}`;
    // One unmeasured download each, so both start with warm caches and a compiled code path.
    await download(daemonUrl, size);
    await download(nginxUrl, size);

    const daemonRates: number[] = [];
    const nginxRates: number[] = [];
    const cpu = { daemon: 0, nginx: 0 };
    for (let round = 0; round < options.rounds; round++) {
      for (const [name, server, url, rates] of [["daemon", servers[0], daemonUrl, daemonRates], ["nginx", servers[1], nginxUrl, nginxRates]] as const) {
        const cpuBefore = cpuSeconds(server.pid!);
        rates.push(await download(url, size));
        cpu[name] += cpuSeconds(server.pid!) - cpuBefore;
      }
    }

    const mib = (rate: number) => (rate / 1024 / 1024).toFixed(0);
    const ratio = median(daemonRates) / median(nginxRates);
    const cpuModel = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown CPU";
    const gibibytes = (size * options.rounds) / 1024 ** 3;
    const version = options.runtime === "node" ? process.version : (await run(daemon[0], ["--version"])).split("\n")[0];
    console.log(`File: ${options.sizeMib} MiB, ${options.rounds} alternating rounds, daemon on ${version}`);
    const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    console.log(`Machine: ${cpuModel}, ${(await run("nproc", [])).trim()} cores, load average ${load} at the end`);
    console.log(`daemon MiB/s: ${daemonRates.map(mib).join(", ")}`);
    console.log(`nginx  MiB/s: ${nginxRates.map(mib).join(", ")}`);
    console.log(`server CPU seconds per GiB: daemon ${(cpu.daemon / gibibytes).toFixed(2)}, nginx ${(cpu.nginx / gibibytes).toFixed(2)}`);
    console.log(`median daemon ${mib(median(daemonRates))} MiB/s, nginx ${mib(median(nginxRates))} MiB/s, ratio ${ratio.toFixed(2)} (required ${MIN_RATIO})`);
    process.exitCode = ratio >= MIN_RATIO ? 0 : 1;
  } finally {
    for (const server of servers.reverse()) await stopServer(server);
    rmSync(directory, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`bench-files: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
