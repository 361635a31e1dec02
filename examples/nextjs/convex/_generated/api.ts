/* eslint-disable */
/**
 * Stand-in for the `api` that `npx convex dev` generates. Codegen needs a
 * Convex deployment, which the example's test does not have; this file is
 * what codegen writes for convex/users.ts and is replaced the first time you
 * run `npx convex dev` against your own deployment.
 */
import type { ApiFromModules, FilterApi, FunctionReference } from "convex/server";
import { anyApi } from "convex/server";
import type * as users from "../users.js";

const fullApi: ApiFromModules<{
  users: typeof users;
}> = anyApi as any;

/** References to the app's public Convex functions, e.g. api.users.me. */
export const api: FilterApi<typeof fullApi, FunctionReference<any, "public">> = anyApi as any;

/** References to the app's internal Convex functions. */
export const internal: FilterApi<typeof fullApi, FunctionReference<any, "internal">> = anyApi as any;
