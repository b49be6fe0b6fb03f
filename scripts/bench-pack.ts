// Measures packing a generated image tree of about 500 MB with the daemon's tar command
// (multi-threaded zstd by default) against `tar | gzip` of the same tree, as a ratio of medians.
// Usage: npx tsx scripts/bench-pack.ts [--megabytes 500] [--runs 3] [--output docs/benchmarks-pack.md]
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../lib/hardware/command.ts";
import { tarCommand } from "../lib/pack.ts";

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

const megabytes = Number(option("megabytes", "500"));
const runs = Number(option("runs", "3"));
const output = option("output", "docs/benchmarks-pack.md");

/** Writes a tree like an OS image: many small text-like files and some large binaries, half compressible. */
function generateTree(root: string, totalBytes: number): void {
  const text = Buffer.from("usr/lib/python3/dist-packages example line of source code and configuration\n".repeat(64));
  let written = 0;
  let index = 0;
  while (written < totalBytes) {
    const directory = join(root, "usr", "lib", `package${Math.floor(index / 200)}`);
    mkdirSync(directory, { recursive: true });
    const large = index % 50 === 0;
    const size = large ? 4 * 1024 * 1024 : 16 * 1024;
    const content = index % 2 === 0 ? randomBytes(size) : Buffer.concat(Array.from({ length: Math.ceil(size / text.length) }, () => text)).subarray(0, size);
    writeFileSync(join(directory, `file${index}`), content);
    written += size;
    index++;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.floor(sorted.length / 2)];
}

const work = mkdtempSync(join(tmpdir(), "luna2-bench-pack-"));
try {
  const root = join(work, "image");
  generateTree(root, megabytes * 1024 * 1024);
  const treeBytes = Number(spawnSync("du", ["-sb", root], { encoding: "utf8" }).stdout.split("\t")[0]);

  const daemonTimes: number[] = [];
  const gzipTimes: number[] = [];
  let daemonSize = 0;
  let gzipSize = 0;
  for (let run = 0; run < runs; run++) {
    const archive = join(work, "daemon.tar.zst");
    let started = performance.now();
    await runCommand(tarCommand(root, archive, "zstd", 3600_000));
    daemonTimes.push((performance.now() - started) / 1000);
    daemonSize = statSync(archive).size;
    rmSync(archive);

    const gzipArchive = join(work, "plain.tar.gz");
    started = performance.now();
    const result = spawnSync("tar", ["-C", root, "-czf", gzipArchive, "."]);
    if (result.status !== 0) throw new Error(`tar | gzip failed: ${result.stderr}`);
    gzipTimes.push((performance.now() - started) / 1000);
    gzipSize = statSync(gzipArchive).size;
    rmSync(gzipArchive);
  }

  const daemonMedian = median(daemonTimes);
  const gzipMedian = median(gzipTimes);
  const report = [
    "# Image packing benchmark",
    "",
    `Command: \`npx tsx scripts/bench-pack.ts --megabytes ${megabytes} --runs ${runs}\``,
    `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), shared and noisy; ${new Date().toISOString().slice(0, 10)}.`,
    `Tree: ${(treeBytes / 1e6).toFixed(0)} MB, half random (incompressible) and half repetitive text.`,
    "",
    "| packer | median seconds | runs (s) | archive MB |",
    "| --- | --- | --- | --- |",
    `| daemon: tar with zstd, one thread per core | ${daemonMedian.toFixed(2)} | ${daemonTimes.map((time) => time.toFixed(2)).join(", ")} | ${(daemonSize / 1e6).toFixed(0)} |`,
    `| tar -czf (single-threaded gzip -6) | ${gzipMedian.toFixed(2)} | ${gzipTimes.map((time) => time.toFixed(2)).join(", ")} | ${(gzipSize / 1e6).toFixed(0)} |`,
    "",
    `Ratio (tar | gzip time / daemon time): ${(gzipMedian / daemonMedian).toFixed(1)}x faster.`,
    "",
  ].join("\n");
  mkdirSync("docs", { recursive: true });
  writeFileSync(output, report);
  console.log(report);
} finally {
  rmSync(work, { recursive: true, force: true });
}
