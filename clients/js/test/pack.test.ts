// @vitest-environment node
// The package as npm would publish it: `npm pack`, installed into a clean
// directory with its peers (the versions this package is tested with),
// then type-checked as an app's code and imported by Node.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, expect, test } from "vitest";

const run = promisify(execFile);
const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
let tmp = "";
afterAll(() => (tmp ? rm(tmp, { recursive: true, force: true }) : undefined));

// An app's code: every entry point, typed.
const consumer = `
import { ConvexReactClient } from "convex/react";
import type { ReactNode } from "react";
import {
  ConvexProviderWithGateway,
  GatewayAuthClient,
  GatewayError,
  signIn,
  signInUrl,
  signOut,
  useGatewayAuth,
  type GatewayAuthState,
  type GatewayUser,
} from "@convex-auth/gateway-client";
import { getGatewayToken, tokenFromRequest } from "@convex-auth/gateway-client/next";
import { tokenFromRequest as neutral } from "@convex-auth/gateway-client/server";

const convex = new ConvexReactClient("https://example.convex.cloud");

export function Providers({ children }: { children: ReactNode }) {
  return <ConvexProviderWithGateway client={convex} tokenReuseMs={3000}>{children}</ConvexProviderWithGateway>;
}

export function Who() {
  const { isLoading, isAuthenticated, user, session, error, signOut: out } = useGatewayAuth();
  const u: GatewayUser | null = user;
  const verified: boolean | undefined = u?.emailVerified;
  const ends: number | undefined = session?.expiresAt;
  const code: string | undefined = error?.code;
  if (isLoading) return <p>…</p>;
  return isAuthenticated ? (
    <button onClick={() => void out({ all: true })}>{u?.name} {String(verified)} {ends} {code}</button>
  ) : (
    <button onClick={() => signIn("github")}>{signInUrl()}</button>
  );
}

export async function serverToken(req: Request): Promise<string | undefined> {
  return (await getGatewayToken()) ?? tokenFromRequest(req) ?? neutral(req.headers, { header: "x-app-token" });
}

const client = new GatewayAuthClient();
const state: GatewayAuthState = client.getState();
void client.fetchAccessToken({ forceRefreshToken: false }).then((t: string | null) => t);
void signOut().catch((e: unknown) => e instanceof GatewayError && e.status);
void state;
`;

test("npm pack installs into a clean directory with its peers and type-checks", { timeout: 300_000 }, async () => {
  const pkg = JSON.parse(await readFile(path.join(pkgDir, "package.json"), "utf8"));
  tmp = await mkdtemp(path.join(os.tmpdir(), "gateway-client-pack-"));

  // npm pack runs prepare (the build) first.
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: pkgDir, maxBuffer: 16 << 20 });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf("[")));
  const files: string[] = packed.files.map((f: { path: string }) => f.path).sort();
  expect(files).toContain("dist/index.js");
  expect(files).toContain("dist/index.d.ts");
  expect(files).toContain("dist/next.js");
  expect(files).toContain("dist/server.d.ts");
  expect(files.filter((f) => !f.startsWith("dist/") && f !== "package.json" && f !== "README.md")).toEqual([]);

  const app = path.join(tmp, "app");
  await run("mkdir", ["-p", app]);
  await writeFile(path.join(app, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  const dev = pkg.devDependencies;
  // The required peers, and what type-checks. next, the optional peer of
  // the /next entry, is left out (its 300 MB install is most of this
  // test's time otherwise): that entry's types name nothing of next's, as
  // the type-check shows.
  const peers = ["react", "react-dom", "convex", "typescript", "@types/react", "@types/react-dom", "@types/node"].map((n) => `${n}@${dev[n]}`);
  await run(
    "npm",
    ["install", "--no-audit", "--no-fund", "--prefer-offline", path.join(tmp, packed.filename), ...peers],
    { cwd: app, maxBuffer: 64 << 20 },
  );

  await writeFile(path.join(app, "consumer.tsx"), consumer);
  for (const resolution of [
    ["--module", "esnext", "--moduleResolution", "bundler"],
    ["--module", "nodenext", "--moduleResolution", "nodenext"],
  ]) {
    const args = ["--noEmit", "--strict", "--jsx", "react-jsx", "--target", "es2022", "--skipLibCheck", ...resolution, "consumer.tsx"];
    const tsc = await run(path.join(app, "node_modules", ".bin", "tsc"), args, { cwd: app }).catch((e) => e);
    expect(tsc.stdout ?? "", `tsc ${resolution.join(" ")}`).toBe("");
  }

  // Node loads the server entry without React or Next.
  const node = await run(
    process.execPath,
    ["--input-type=module", "-e", `import { tokenFromRequest } from "@convex-auth/gateway-client/server"; console.log(tokenFromRequest(new Headers({ "x-convex-token": "t" })));`],
    { cwd: app },
  );
  expect(node.stdout.trim()).toBe("t");
});
