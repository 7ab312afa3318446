// Copies the chart library from node_modules into assets/vendor and records what was
// copied (version, the lockfile's integrity, a sha256 per file) in assets/vendor/VENDOR.json.
// tests/unit/reports/test_vendor.py checks that the committed files are these.
import { createHash } from "node:crypto";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const here = new URL(".", import.meta.url).pathname;
const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
const entry = lock.packages["node_modules/uplot"];
const files = ["uPlot.iife.min.js", "uPlot.min.css"];
const record = { package: "uplot", version: entry.version, integrity: entry.integrity, files: {} };
for (const name of files) {
  const source = join(here, "node_modules", "uplot", "dist", name);
  const target = join(here, "assets", "vendor", name);
  copyFileSync(source, target);
  record.files[name] = createHash("sha256").update(readFileSync(target)).digest("hex");
}
writeFileSync(join(here, "assets", "vendor", "VENDOR.json"), JSON.stringify(record, null, 2) + "\n");
console.log(`vendored uplot ${entry.version}: ${files.join(", ")}`);
