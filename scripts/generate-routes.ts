import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { collectRoutes, renderManifest } from "./routes-manifest.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const routes = collectRoutes(root);
writeFileSync(join(root, "lib", "routes.gen.ts"), renderManifest(routes));
console.log(`Wrote lib/routes.gen.ts with ${routes.length} routes`);
