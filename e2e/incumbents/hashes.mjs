// Hashes passwords the way the systems users are imported from do, with
// their own packages, and prints one JSON object per line:
//   {"scheme": "...", "source": "...", "password": "...", "hash": "..."}
//
//   node hashes.mjs <password>...          every password by every source
//   node hashes.mjs <source>=<password>... one source each
//
// - lucia 3.2.2's Scrypt: what @convex-dev/auth 0.0.95's Password provider
//   calls (providers/Password.ts: hashSecret is new Scrypt().hash(password)).
// - better-auth 1.7.29's hashPassword (better-auth/crypto, which is
//   @better-auth/utils/password).
// - password-hash-wasm 0.0.0's argon2id hashPassword of the NFC form: what
//   @convex-dev/auth 2.0.0's password component stores
//   (components/password/public.ts: hashPassword(normalizePassword(p)),
//   validation.ts: normalizePassword is p.normalize("NFC")).
//
// Each hash is checked with the package's own verify before it is printed.
import { register } from "node:module";

register("./wasm-loader.mjs", import.meta.url);

const { Scrypt } = await import("lucia");
const betterAuth = await import("better-auth/crypto");
const argon2id = await import("password-hash-wasm/argon2id");

const schemes = [
  {
    scheme: "scrypt-nfkc",
    source: "convex-auth-0",
    hash: (p) => new Scrypt().hash(p),
    verify: (p, h) => new Scrypt().verify(h, p),
  },
  {
    scheme: "scrypt-nfkc",
    source: "better-auth",
    hash: (p) => betterAuth.hashPassword(p),
    verify: (p, h) => betterAuth.verifyPassword({ hash: h, password: p }),
  },
  {
    scheme: "argon2id-nfc",
    source: "convex-auth-2",
    hash: (p) => argon2id.hashPassword(p.normalize("NFC")),
    verify: (p, h) => argon2id.verifyPassword(p.normalize("NFC"), h),
  },
];

const args = process.argv.slice(2);
if (args.length === 0) {
  console.error("usage: node hashes.mjs [<source>=]<password>...");
  process.exit(2);
}
for (const arg of args) {
  const eq = arg.indexOf("=");
  const named = eq > 0 ? schemes.find((s) => s.source === arg.slice(0, eq)) : undefined;
  const password = named ? arg.slice(eq + 1) : arg;
  for (const { scheme, source, hash, verify } of named ? [named] : schemes) {
    const h = await hash(password);
    if (!(await verify(password, h))) throw new Error(`${source}: its own verify refuses its hash`);
    console.log(JSON.stringify({ scheme, source, password, hash: h }));
  }
}
