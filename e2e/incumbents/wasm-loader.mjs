// A module hook that loads a .wasm import as a compiled WebAssembly.Module,
// the way Convex's bundler hands password-hash-wasm its module, so that the
// package's own code runs unchanged in Node.
import { readFile } from "node:fs/promises";

export async function load(url, context, nextLoad) {
  if (!url.endsWith(".wasm")) return nextLoad(url, context);
  const bytes = await readFile(new URL(url));
  return {
    format: "module",
    shortCircuit: true,
    source: `export default new WebAssembly.Module(Uint8Array.from(atob(${JSON.stringify(bytes.toString("base64"))}), (c) => c.charCodeAt(0)));`,
  };
}
