/* eslint-disable */
/**
 * Stand-in for the `server` utilities that `npx convex dev` generates (see
 * api.ts); without a schema the data model is AnyDataModel.
 */
import { queryGeneric } from "convex/server";
import type { AnyDataModel, QueryBuilder } from "convex/server";

/** Defines a query in this Convex app's public API. */
export const query: QueryBuilder<AnyDataModel, "public"> = queryGeneric;
