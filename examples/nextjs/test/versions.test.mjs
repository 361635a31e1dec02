// docs/server-helpers.md's table of tested versions says what this
// example's lock file installs: each package's versions, aliases included
// (convex-auth-0 is @convex-dev/auth 0.0.x).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const exampleDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const doc = path.join(exampleDir, "..", "..", "docs", "server-helpers.md");

// The rows of the table under "## Tested versions": | `name` | v1, v2 |
function table(markdown) {
  const section = markdown.split(/^## /m).find((s) => s.startsWith("Tested versions"));
  assert.ok(section, "docs/server-helpers.md has a Tested versions section");
  const rows = new Map();
  for (const m of section.matchAll(/^\| `([^`]+)`[^|]*\| ([^|]+) \|$/gm)) {
    rows.set(m[1], m[2].split(",").map((v) => v.trim()).sort());
  }
  assert.ok(rows.size > 0, "the Tested versions table has rows");
  return rows;
}

test("the tested-versions table of docs/server-helpers.md matches the lock file", async () => {
  const rows = table(await readFile(doc, "utf8"));
  const lock = JSON.parse(await readFile(path.join(exampleDir, "package-lock.json"), "utf8"));
  const installed = new Map();
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (!where.includes("node_modules/")) continue;
    // Nested copies count too; an alias names its package in `name`.
    const name = entry.name ?? where.slice(where.lastIndexOf("node_modules/") + "node_modules/".length);
    installed.set(name, [...new Set([...(installed.get(name) ?? []), entry.version])].sort());
  }
  for (const [name, versions] of rows) {
    assert.deepEqual(installed.get(name), versions, `${name}: the table says ${versions.join(", ")}, the lock file installs ${installed.get(name)}`);
  }
  for (const name of ["convex", "next", "@convex-dev/auth", "@convex-dev/better-auth", "better-auth", "@convex-auth/gateway-client"]) {
    assert.ok(rows.has(name), `the table names ${name}`);
  }
});
