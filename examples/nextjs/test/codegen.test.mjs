// convex/_generated/ is committed (convex-test and next build need it) and
// must stay exactly what the pinned convex package's `convex codegen` writes
// for convex/: this runs that codegen offline (standin/codegen.mjs) and
// compares.
import assert from "node:assert/strict";
import { test } from "node:test";
import { check } from "../standin/codegen.mjs";

test("convex/_generated is what convex codegen writes for convex/", async () => {
  const differ = await check();
  assert.deepEqual(differ, [], `these files differ from convex codegen's: ${differ.join(", ")}; run node standin/codegen.mjs`);
});
