import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Test harness: one ipmi_sim (OpenIPMI) per simulated BMC, each bound to its own loopback address
 * 127.0.0.N (N >= 2) on a shared UDP port, with a chassis_control script that keeps the power
 * state in files so tests can assert on it and inject failures.
 */

/** Password the simulator's lan.conf starts with; a password its parser cannot read is set over IPMI afterwards. */
const INITIAL_PASSWORD = "initial-pass";

/** Passwords that lan.conf can contain between double quotes: no spaces, quotes or `$`. */
const CONFIG_SAFE_PASSWORD = /^[A-Za-z0-9._@%+=:,\/-]{1,20}$/;

const CHASSIS_SCRIPT = `#!/bin/sh
# Chassis control of one simulated BMC. ipmi_sim runs it as: SCRIPT DIR get power | set power 0|1 | ...
dir=$1
shift
echo "$*" >> "$dir/chassis.log"
[ -e "$dir/fail" ] && exit 1
case "$1 $2" in
  "get power") printf 'power:%s\\n' "$(cat "$dir/power" 2>/dev/null || echo 0)" ;;
  "get boot") echo "boot:none" ;;
  "set power") echo "$3" > "$dir/power" ;;
  "set shutdown") echo 0 > "$dir/power" ;;
esac
exit 0
`;

const COMMAND_FILE = [
  "mc_setbmc 0x20",
  "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02",
  "sel_enable 0x20 1000 0x0a",
  "mc_enable 0x20",
  "",
].join("\n");

/** Options of one simulated BMC. */
export interface SimulatorOptions {
  /** Loopback address 127.0.0.N with N >= 2. */
  address: string;
  port: number;
  username?: string;
  password: string;
  /** Initial power state. */
  power?: "on" | "off";
}

/** One running ipmi_sim. */
export class SimulatedBmc {
  readonly address: string;
  readonly port: number;
  readonly directory: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;

  private constructor(options: SimulatorOptions, directory: string, child: ChildProcess) {
    this.address = options.address;
    this.port = options.port;
    this.directory = directory;
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once("exit", () => resolve()));
  }

  /** Starts a simulator and resolves once `chassis power status` succeeds against it. */
  static async start(options: SimulatorOptions): Promise<SimulatedBmc> {
    requireLoopback(options.address);
    if (udpPortBound(options.address, options.port)) throw new Error(`UDP ${options.address}:${options.port} is already in use`);

    const directory = mkdtempSync(join(tmpdir(), "luna2-ipmi-sim-"));
    const username = options.username ?? "admin";
    const configPassword = CONFIG_SAFE_PASSWORD.test(options.password) ? options.password : INITIAL_PASSWORD;
    writeFiles(directory, options, username, configPassword);

    const child = spawn("ipmi_sim", ["-c", join(directory, "lan.conf"), "-f", join(directory, "bmc.emu"), "-s", join(directory, "state"), "-n"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const bmc = new SimulatedBmc(options, directory, child);
    try {
      await waitForBind(options.address, options.port, child, () => stderr);
      if (configPassword !== options.password) {
        await bmc.ipmitool(configPassword, ["user", "set", "password", "2", options.password, "20"]);
      }
      await bmc.ipmitool(options.password, ["chassis", "power", "status"]);
    } catch (error) {
      await bmc.stop();
      throw error;
    }
    return bmc;
  }

  /** The process id, for stopping it or reading /proc. */
  get pid(): number {
    return this.#child.pid!;
  }

  /** Power state as the chassis_control script stored it. */
  powerState(): "on" | "off" {
    const file = join(this.directory, "power");
    return existsSync(file) && readFileSync(file, "utf8").trim() === "1" ? "on" : "off";
  }

  /** Returns every chassis_control call, e.g. `get power`, `set power 1`, `set identify 15 0`. */
  chassisLog(): string[] {
    const file = join(this.directory, "chassis.log");
    return existsSync(file) ? readFileSync(file, "utf8").split("\n").map((line) => line.trim()).filter(Boolean) : [];
  }

  /** Makes every chassis_control call fail, which ipmitool reports as "Unspecified error". */
  setFailing(failing: boolean): void {
    const file = join(this.directory, "fail");
    if (failing) writeFileSync(file, "");
    else if (existsSync(file)) unlinkSync(file);
  }

  /** Stops the simulator by its pid and removes its files. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      process.kill(this.pid, "SIGTERM");
      await Promise.race([this.#exited, delay(2000)]);
      if (this.#child.exitCode === null && this.#child.signalCode === null) process.kill(this.pid, "SIGKILL");
    }
    rmSync(this.directory, { recursive: true, force: true });
  }

  /** Runs ipmitool against this simulator with suite 3; the password travels in the environment. */
  ipmitool(password: string, command: string[]): Promise<string> {
    const args = ["-I", "lanplus", "-H", this.address, "-p", String(this.port), "-U", "admin", "-E", "-C", "3", "-N", "1", "-R", "1", ...command];
    return new Promise((resolve, reject) => {
      execFile("ipmitool", args, { env: { ...process.env, IPMI_PASSWORD: password }, timeout: 10_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`ipmitool ${command.join(" ")} against ${this.address}:${this.port} failed: ${stderr.trim()}`));
        else resolve(stdout);
      });
    });
  }
}

function writeFiles(directory: string, options: SimulatorOptions, username: string, password: string): void {
  mkdirSync(join(directory, "state"));
  const script = join(directory, "chassis.sh");
  writeFileSync(script, CHASSIS_SCRIPT);
  chmodSync(script, 0o755);
  writeFileSync(join(directory, "power"), options.power === "on" ? "1\n" : "0\n");
  writeFileSync(join(directory, "bmc.emu"), COMMAND_FILE);
  writeFileSync(
    join(directory, "lan.conf"),
    [
      'name "luna2-test"',
      "set_working_mc 0x20",
      "  startlan 1",
      `    addr ${options.address} ${options.port}`,
      "    priv_limit admin",
      "    allowed_auths_callback none md2 md5 straight",
      "    allowed_auths_user none md2 md5 straight",
      "    allowed_auths_operator none md2 md5 straight",
      "    allowed_auths_admin none md2 md5 straight",
      "    guid a123456789abcdefa123456789abcdef",
      "  endlan",
      `  chassis_control "${script} ${directory}"`,
      `  user 2 true "${username}" "${password}" admin 10 none md2 md5 straight`,
      "",
    ].join("\n"),
  );
}

/** Throws unless `address` is 127.0.0.N with N >= 2 or another 127/8 address other than 127.0.0.1. */
export function requireLoopback(address: string): void {
  const octets = address.split(".").map(Number);
  const loopback = octets.length === 4 && octets[0] === 127 && octets.every((octet) => Number.isInteger(octet) && octet >= 0 && octet <= 255);
  if (!loopback || address === "127.0.0.1") throw new Error(`Simulated BMCs must use 127.0.0.2 or above in 127.0.0.0/8, not ${address}`);
}

/** True when a UDP socket is bound to address:port or 0.0.0.0:port, read from /proc/net/udp without sending anything. */
export function udpPortBound(address: string, port: number): boolean {
  const hexAddress = address.split(".").map((octet) => Number(octet).toString(16).padStart(2, "0").toUpperCase()).reverse().join("");
  const hexPort = port.toString(16).padStart(4, "0").toUpperCase();
  const wanted = [`${hexAddress}:${hexPort}`, `00000000:${hexPort}`];
  return readFileSync("/proc/net/udp", "utf8").split("\n").some((line) => wanted.includes(line.trim().split(/\s+/)[1]));
}

async function waitForBind(address: string, port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!udpPortBound(address, port)) {
    if (child.exitCode !== null) throw new Error(`ipmi_sim exited with ${child.exitCode}: ${stderr()}`);
    if (Date.now() > deadline) throw new Error(`ipmi_sim did not bind ${address}:${port} within 5 s: ${stderr()}`);
    await delay(5);
  }
}

function delay(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** Returns a UDP port in 20000-39999 that no socket on any of `addresses` uses now. */
export function pickSimulatorPort(addresses: readonly string[]): number {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    if (!addresses.some((address) => udpPortBound(address, port))) return port;
  }
  throw new Error("No free UDP port found for the BMC simulators");
}

/** Starts simulators in parallel; stops the ones that started when any fails. */
export async function startSimulators(options: readonly SimulatorOptions[]): Promise<SimulatedBmc[]> {
  const results = await Promise.allSettled(options.map((option) => SimulatedBmc.start(option)));
  const started = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const failure = results.find((result) => result.status === "rejected");
  if (failure) {
    await Promise.all(started.map((bmc) => bmc.stop()));
    throw failure.reason;
  }
  return started;
}
