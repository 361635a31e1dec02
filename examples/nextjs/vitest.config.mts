import { defineConfig } from "vitest/config";

// The Convex functions' tests (convex/*.spec.ts), with convex-test in the
// edge-runtime environment Convex's own runtime resembles. They are named
// .spec.ts so that `node --test` (test/*.test.mjs) never picks them up.
export default defineConfig({
  test: {
    environment: "edge-runtime",
    include: ["convex/**/*.spec.ts"],
    server: { deps: { inline: ["convex-test"] } },
    // vitest's 5 s per test is a wall-clock bound a starved machine can
    // break (recorded.spec.ts calls the gateway); a bound only.
    testTimeout: 60_000,
  },
});
