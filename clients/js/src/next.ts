import { headers } from "next/headers.js";
import { DEFAULT_TOKEN_HEADER, type TokenHeaderOptions } from "./server.js";

export { DEFAULT_TOKEN_HEADER, tokenFromRequest, type RequestWithHeaders, type TokenHeaderOptions } from "./server.js";

/**
 * The Convex token the gateway injected into the current request, read
 * through `next/headers`: in server components, route handlers and server
 * actions. Undefined when there is none. Pass it on as it is:
 * `fetchQuery(api.x, args, { token: await getGatewayToken() })`.
 */
export async function getGatewayToken(options: TokenHeaderOptions = {}): Promise<string | undefined> {
  const value = (await headers()).get(options.header ?? DEFAULT_TOKEN_HEADER);
  return value ? value : undefined;
}
