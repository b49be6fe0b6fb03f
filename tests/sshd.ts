import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, startProcess, type Started } from "./processes.ts";

/** An sshd on 127.0.0.1 that accepts one generated key, and an ssh_config that routes node names to it. */
export interface TestSshd {
  process: Started;
  port: number;
  /** ssh_config mapping `node*` to this sshd, for [SSH] CONFIG_FILE. */
  configFile: string;
  stop(): Promise<void>;
}

/** Starts sshd for the tests; `unreachable` names hosts the ssh_config sends to a closed port. */
export async function startSshd(directory: string, unreachable: string[] = []): Promise<TestSshd> {
  mkdirSync(directory, { recursive: true });
  const hostKey = join(directory, "host_key");
  const clientKey = join(directory, "client_key");
  for (const key of [hostKey, clientKey]) {
    const result = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
    if (result.status !== 0) throw new Error(`ssh-keygen failed: ${result.stderr}`);
  }
  const authorizedKeys = join(directory, "authorized_keys");
  copyFileSync(`${clientKey}.pub`, authorizedKeys);
  chmodSync(authorizedKeys, 0o600);

  const port = await freePort();
  const closedPort = await freePort();
  const sshdConfig = join(directory, "sshd_config");
  writeFileSync(sshdConfig, [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    `PidFile ${join(directory, "sshd.pid")}`,
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "PermitRootLogin prohibit-password",
    "StrictModes no",
    "",
  ].join("\n"));
  // sshd refuses to start without its privilege separation directory.
  if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755 });

  const configFile = join(directory, "ssh_config");
  const common = [`  IdentityFile ${clientKey}`, "  StrictHostKeyChecking no", "  UserKnownHostsFile /dev/null", "  LogLevel ERROR"];
  writeFileSync(configFile, [
    ...unreachable.flatMap((host) => [`Host ${host}`, "  HostName 127.0.0.1", `  Port ${closedPort}`, ...common]),
    "Host *",
    "  HostName 127.0.0.1",
    `  Port ${port}`,
    ...common,
    "",
  ].join("\n"));

  const process = await startProcess("/usr/sbin/sshd", ["-f", sshdConfig, "-D", "-e"], { ready: /Server listening/, timeoutMs: 10000 });
  return {
    process,
    port,
    configFile,
    async stop() {
      globalThis.process.kill(process.child.pid!, "SIGTERM");
      await process.exited;
    },
  };
}
