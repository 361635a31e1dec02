import { defineConfig } from "vitest/config";

// The package's logic in a DOM (happy-dom) with a fake gateway behind
// fetch. The Chromium test through the built gateway is
// e2e/gateway_client_test.go; npm pack is checked by test/pack.test.ts.
export default defineConfig({
  test: {
    environment: "happy-dom",
    environmentOptions: { happyDOM: { url: "http://localhost:3000/orders?tab=open" } },
    include: ["test/**/*.test.{ts,tsx}"],
    // vitest's 5 s per test is a wall-clock bound a starved machine can
    // break; a bound only.
    testTimeout: 60_000,
  },
});
