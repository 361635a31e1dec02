// RFC 6238 TOTP as authenticator apps compute it (SHA-1, 6 digits, 30 s
// steps), for the browser tests to type the codes a phone would show.
import { createHmac } from "node:crypto";

// base32 decodes an authenticator app's key (RFC 4648, no padding).
export function base32(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of s.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const out = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}

// totpAt is key's code for the 30-second step stepNumber.
export function totpAt(key, stepNumber) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(stepNumber));
  const h = createHmac("sha1", key).update(counter).digest();
  const o = h[h.length - 1] & 0xf;
  const v = (((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3]) % 1e6;
  return String(v).padStart(6, "0");
}

// nowStep is the current step.
export const nowStep = () => Math.floor(Date.now() / 1000 / 30);

// RFC 6238 Appendix B's SHA-1 vector, checked once on import.
if (totpAt(Buffer.from("12345678901234567890"), Math.floor(59 / 30)) !== "287082") {
  throw new Error("the Node TOTP does not match RFC 6238's vector");
}
