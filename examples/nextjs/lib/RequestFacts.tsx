import { createHash } from "node:crypto";
import { cookies, headers } from "next/headers";

const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");

/**
 * What reached the app, for the example's test: the name of every request
 * cookie with a SHA-256 of its value (never the value), and of the injected
 * header. The test compares them with the token the Convex stand-in got.
 */
export async function RequestFacts() {
  const header = (await headers()).get("x-convex-token");
  return (
    <details id="request-facts">
      <summary>What reached the app</summary>
      <ul id="request-cookies">
        {(await cookies()).getAll().map((c) => (
          // A cookie a middleware deleted is listed without a value.
          <li key={c.name} data-cookie={c.name} data-sha256={typeof c.value === "string" ? sha256(c.value) : ""}>
            {c.name}
          </li>
        ))}
      </ul>
      <p id="token-header" data-sha256={header ? sha256(header) : ""}>
        x-convex-token: {header ? "present" : "absent"}
      </p>
    </details>
  );
}
