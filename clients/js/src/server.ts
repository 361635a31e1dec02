/** The header the gateway injects the Convex token into, unless `inject header` names another. */
export const DEFAULT_TOKEN_HEADER = "x-convex-token";

export interface TokenHeaderOptions {
  /** The header's name (`inject header` in the gateway's config). Default `x-convex-token`. */
  header?: string;
}

/** Node's IncomingMessage and anything else with a plain header record. */
interface NodeStyleRequest {
  headers: Record<string, string | string[] | undefined>;
}

/** What {@link tokenFromRequest} reads: a fetch `Request`, its `Headers`, or a Node request. */
export type RequestWithHeaders = Request | Headers | { headers: Headers } | NodeStyleRequest;

/**
 * The Convex token the gateway injected into this request, or undefined
 * when there is none (nobody signed in on a path the gateway does not
 * protect, or a request that did not pass the gateway). The gateway removes
 * any copy a client sent, so the value is the gateway's. Pass it on as it
 * is, e.g. `fetchQuery(api.x, args, { token })`.
 */
export function tokenFromRequest(req: RequestWithHeaders, options: TokenHeaderOptions = {}): string | undefined {
  const name = (options.header ?? DEFAULT_TOKEN_HEADER).toLowerCase();
  const headers = req instanceof Headers || isHeaders(req) ? req : req.headers;
  let value: string | string[] | null | undefined;
  if (headers instanceof Headers || isHeaders(headers)) {
    value = headers.get(name);
  } else {
    // Node lowercases header names.
    value = headers[name];
  }
  // The gateway sets one value; a repeated header did not come from it.
  if (Array.isArray(value)) return undefined;
  return value ? value : undefined;
}

// A Headers from another realm (a framework's polyfill, another copy of undici).
function isHeaders(x: unknown): x is Headers {
  return typeof x === "object" && x !== null && typeof (x as Headers).get === "function" && typeof (x as Headers).has === "function";
}
