import { defineConfig } from "vitest/config";

// The Convex functions' tests (convex/*.spec.ts), with convex-test in the
// edge-runtime environment Convex's own runtime resembles. They are named
// .spec.ts so that `node --test` (test/*.test.mjs) never picks them up.
export default defineConfig({
  test: {
    environment: "edge-runtime",
    include: ["convex/**/*.spec.ts"],
    server: { deps: { inline: ["convex-test"] } },
  },
});
