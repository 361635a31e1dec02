// An app on @convex-dev/better-auth that moves behind the gateway
// (docs/migrate.md): what getAuthUser does with the gateway's tokens, and
// the replacement.
//
// Better Auth's token for Convex carries the user's _id in sub and its
// session's _id in a sessionId claim, and getAuthUser looks that session up.
// The gateway's token has the same sub (the import keeps the _id) but no
// sessionId claim: its session is the gateway's (sid). So getAuthUser finds
// no user. The replacement reads the user by the subject.
import { convexTest } from "convex-test";
import { createClient } from "@convex-dev/better-auth";
import {
  componentsGeneric,
  defineSchema,
  makeFunctionReference,
  mutationGeneric,
  queryGeneric,
  type GenericQueryCtx,
  type GenericDataModel,
} from "convex/server";
import { v } from "convex/values";
import { expect, test } from "vitest";
import { modules } from "./test.setup";

// @convex-dev/better-auth's component as the package ships it.
const componentModules = import.meta.glob([
  "../node_modules/@convex-dev/better-auth/dist/component/**/*.js",
  "!../node_modules/@convex-dev/better-auth/dist/component/testProfiles/**",
]);
// The app's component reference and its Better Auth client.
const components = componentsGeneric() as any;
const authComponent = createClient(components.betterAuth);

// The replacement for getAuthUser, as docs/migrate.md gives it: the Better
// Auth user row whose _id is the token's subject.
async function getAuthUser(ctx: GenericQueryCtx<GenericDataModel>) {
  const identity = await ctx.auth.getUserIdentity();
  if (identity === null) return null;
  return await ctx.runQuery(components.betterAuth.adapter.findOne, {
    model: "user",
    where: [{ field: "_id", value: identity.subject }],
  });
}

const fns = {
  // A Better Auth user and a live session of it, as sign-in leaves them.
  seed: mutationGeneric({
    args: {},
    handler: async (ctx) => {
      const now = Date.now();
      const user = await ctx.runMutation(components.betterAuth.adapter.create, {
        input: { model: "user", data: { name: "Ada", email: "ada@example.com", emailVerified: true, createdAt: now, updatedAt: now } },
      });
      const session = await ctx.runMutation(components.betterAuth.adapter.create, {
        input: { model: "session", data: { token: "t", userId: user._id, expiresAt: now + 3_600_000, createdAt: now, updatedAt: now } },
      });
      return { userId: user._id as string, sessionId: session._id as string };
    },
  }),
  withBetterAuth: queryGeneric({
    args: {},
    handler: async (ctx) => ((await authComponent.safeGetAuthUser(ctx as any)) as any)?._id ?? null,
  }),
  withGateway: queryGeneric({ args: {}, handler: async (ctx) => (await getAuthUser(ctx))?._id ?? null }),
};
const api = {
  seed: makeFunctionReference<"mutation", Record<string, never>, { userId: string; sessionId: string }>("ba:seed"),
  withBetterAuth: makeFunctionReference<"query", Record<string, never>, string | null>("ba:withBetterAuth"),
  withGateway: makeFunctionReference<"query", Record<string, never>, string | null>("ba:withGateway"),
};

async function setup() {
  const t = convexTest(defineSchema({}), { ...modules, "./ba.ts": async () => fns });
  const schema = ((await componentModules["../node_modules/@convex-dev/better-auth/dist/component/schema.js"]()) as { default: ReturnType<typeof defineSchema> }).default;
  t.registerComponent("betterAuth", schema, componentModules);
  return t;
}

test("getAuthUser finds the user of Better Auth's own token (the setup is real)", async () => {
  const t = await setup();
  const { userId, sessionId } = await t.mutation(api.seed, {});
  const asBetterAuth = t.withIdentity({ subject: userId, sessionId });
  expect(await asBetterAuth.query(api.withBetterAuth, {})).toBe(userId);
  expect(await asBetterAuth.query(api.withGateway, {})).toBe(userId);
});

test("getAuthUser finds no user for the gateway's token; the replacement does", async () => {
  const t = await setup();
  const { userId } = await t.mutation(api.seed, {});
  // The gateway's token for Ada, imported under her Better Auth _id: the
  // same sub, its own session ID in sid, no sessionId claim.
  const asGateway = t.withIdentity({ issuer: "https://app.example.com", subject: userId, sid: "gatewaySessionId0000000" });
  // safeGetAuthUser looks up the session named by sessionId, which the
  // gateway's token does not have: the component refuses the lookup.
  await expect(asGateway.query(api.withBetterAuth, {})).rejects.toThrow(/Missing required field `value`/);
  expect(await asGateway.query(api.withGateway, {})).toBe(userId);
  expect(await t.query(api.withGateway, {})).toBeNull();
});
