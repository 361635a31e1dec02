import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();

// The gateway retries an event for up to 24 h; its webhook-id is kept 48 h.
crons.daily("forget old gateway event ids", { hourUTC: 4, minuteUTC: 0 }, internal.gatewayEvents.prune, {});

export default crons;
