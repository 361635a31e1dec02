import { httpRouter } from "convex/server";
import { receive } from "./gatewayEvents";

const http = httpRouter();

// The gateway's signed events: `events { url https://<deployment>.convex.site/gateway-events }`.
http.route({ path: "/gateway-events", method: "POST", handler: receive });

export default http;
