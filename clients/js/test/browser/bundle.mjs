// Bundles fixture.tsx (with React, Convex's client and the package's
// source) into one browser script for the Chromium test.
// Usage: node bundle.mjs <out file>
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const out = process.argv[2];
if (!out) {
  console.error("usage: node bundle.mjs <out file>");
  process.exit(2);
}
await build({
  entryPoints: [path.join(path.dirname(fileURLToPath(import.meta.url)), "fixture.tsx")],
  outfile: out,
  bundle: true,
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  minify: true,
  logLevel: "warning",
});
