// An app on @convex-dev/auth 2.x that moves behind the gateway (docs/migrate.md):
// what getAuthUserId does with the gateway's tokens, and the replacement.
//
// 2.x's access token names a session (sub is an ID of its auth component's
// sessions table) and getAuthUserId looks the session up. The gateway's
// token names the user (sub is the users row's _id, kept by the import). So
// 2.x's getAuthUserId finds no session and answers null: the signed-in user
// looks signed out. The replacement reads the user ID from the subject.
import { convexTest } from "convex-test";
import { getAuthUserId as convexAuthUserId } from "@convex-dev/auth/server";
import {
  componentsGeneric,
  defineSchema,
  defineTable,
  makeFunctionReference,
  mutationGeneric,
  queryGeneric,
  type GenericQueryCtx,
  type GenericDataModel,
} from "convex/server";
import { v, type GenericId } from "convex/values";
import { decodeJwt } from "jose";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { modules } from "./test.setup";

const GATEWAY = "https://app.example.com";

beforeEach(() => {
  vi.stubEnv("CONVEX_AUTH_ISSUER", GATEWAY); // the gateway's issuer: auth.config.ts' domain
  // Convex Auth's core checks the issuer of the tokens it signs against it.
  vi.stubEnv("CONVEX_CLOUD_URL", "https://happy-otter-123.convex.cloud");
});
afterEach(() => vi.unstubAllEnvs());

// The replacement for getAuthUserId, as docs/migrate.md gives it. A token
// of the gateway (its issuer) carries the user's _id in sub; a token of
// Convex Auth 2.x still in use while the app moves goes to 2.x's own
// helper. Once every client has the gateway's tokens, the first branch is
// all there is.
async function getAuthUserId(
  ctx: GenericQueryCtx<GenericDataModel>,
): Promise<GenericId<"users"> | null> {
  const identity = await ctx.auth.getUserIdentity();
  if (identity === null) return null;
  if (identity.issuer === process.env.CONVEX_AUTH_ISSUER) {
    return ctx.db.normalizeId("users", identity.subject);
  }
  return await convexAuthUserId(ctx);
}

// The users table of an app on Convex Auth: the IDs its data references.
const schema = defineSchema({
  users: defineTable({ name: v.string() }),
});

// The app's functions under test.
const fns = {
  createUser: mutationGeneric({
    args: { name: v.string() },
    handler: (ctx, { name }) => ctx.db.insert("users", { name }),
  }),
  // What 2.x's password method does once the password is verified: a
  // session of the core component, and its tokens.
  signInWithConvexAuth: mutationGeneric({
    args: { userId: v.string() },
    handler: (ctx, { userId }) =>
      ctx.runMutation(
        (componentsGeneric() as any).auth.public._internal_dangerous_signIn,
        {
          claims: { method: "emailPassword", profile: {} },
          componentPath: "authPassword",
          userId,
          accessTokenTtlSeconds: 60,
          refreshInactivityTimeoutSeconds: 3600,
          sessionMaxLifetimeSeconds: 3600,
        },
      ),
  }),
  withConvexAuth: queryGeneric({ args: {}, handler: (ctx) => convexAuthUserId(ctx) }),
  withGateway: queryGeneric({ args: {}, handler: (ctx) => getAuthUserId(ctx) }),
};
const api = {
  createUser: makeFunctionReference<"mutation", { name: string }, string>("migrate:createUser"),
  signInWithConvexAuth: makeFunctionReference<"mutation", { userId: string }, { accessToken: string }>("migrate:signInWithConvexAuth"),
  withConvexAuth: makeFunctionReference<"query", Record<string, never>, string | null>("migrate:withConvexAuth"),
  withGateway: makeFunctionReference<"query", Record<string, never>, string | null>("migrate:withGateway"),
};

// Convex Auth's core component as the package ships it, registered as
// @convex-dev/auth/test's registerCore does (that helper is TypeScript
// source that the example's type check cannot compile).
const coreModules = import.meta.glob("../node_modules/@convex-dev/auth/dist/component/**/*.js");

async function setup() {
  const t = convexTest(schema, { ...modules, "./migrate.ts": async () => fns });
  const loadSchema = coreModules["../node_modules/@convex-dev/auth/dist/component/schema.js"];
  if (loadSchema === undefined) {
    throw new Error("this spec needs @convex-dev/auth 2.x (its core component) in examples/nextjs: see package.json");
  }
  const coreSchema = ((await loadSchema()) as { default: typeof schema }).default;
  t.registerComponent("auth", coreSchema, coreModules);
  return t;
}

// The identity Convex derives from a 2.x access token: its sub.
function sessionIdentity(tokens: { accessToken: string }) {
  return { subject: decodeJwt(tokens.accessToken).sub! };
}

test("2.x getAuthUserId finds the user of its own session token (the setup is real)", async () => {
  const t = await setup();
  const ada = await t.mutation(api.createUser, { name: "Ada" });
  const tokens = await t.mutation(api.signInWithConvexAuth, { userId: ada });
  const asSession = t.withIdentity(sessionIdentity(tokens));
  expect(sessionIdentity(tokens).subject).not.toBe(ada);
  expect(await asSession.query(api.withConvexAuth, {})).toBe(ada);
  // The replacement keeps 2.x's tokens working while the app moves.
  expect(await asSession.query(api.withGateway, {})).toBe(ada);
});

test("2.x getAuthUserId answers null for the gateway's token: its sub is the user, not a session", async () => {
  const t = await setup();
  const ada = await t.mutation(api.createUser, { name: "Ada" });
  // The identity Convex derives from the gateway's token for Ada, imported
  // under her users _id.
  const asGateway = t.withIdentity({ issuer: GATEWAY, subject: ada, tokenIdentifier: `${GATEWAY}|${ada}` });
  expect(await asGateway.query(api.withConvexAuth, {})).toBeNull();
  expect(await asGateway.query(api.withGateway, {})).toBe(ada);
});

test("the replacement answers null when signed out, and for a gateway sub that is no users ID", async () => {
  const t = await setup();
  expect(await t.query(api.withGateway, {})).toBeNull();
  const stranger = t.withIdentity({ issuer: GATEWAY, subject: "kX9vB2nQ7mLp4RtY8wZc3HdF6gJs1AeU" });
  expect(await stranger.query(api.withGateway, {})).toBeNull();
});
