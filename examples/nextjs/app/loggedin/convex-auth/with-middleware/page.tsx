// The Convex Auth page again, behind Convex Auth's middleware (proxy.ts).
export { default } from "../page";
