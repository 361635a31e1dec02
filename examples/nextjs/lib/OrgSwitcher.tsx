"use client";

import { useRouter } from "next/navigation";
import { useState } from "react";

/**
 * Switches the session's active organization: the gateway asks the app's
 * claims query with {context: {org}} and, unless it returns null, stores
 * the org with the session, so the next token (and the next render of the
 * page) carries it.
 */
export function OrgSwitcher({ orgs, active }: { orgs: string[]; active: string | null }) {
  const router = useRouter();
  const [error, setError] = useState<string | null>(null);
  async function pick(org: string) {
    setError(null);
    const res = await fetch("/auth/session/context", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ org }),
    });
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      setError(body?.message ?? `the switch failed (${res.status})`);
      return;
    }
    router.refresh();
  }
  return (
    <div id="org-switcher">
      {orgs.map((org) => (
        <button key={org} type="button" disabled={org === active} onClick={() => pick(org)}>
          {org}
        </button>
      ))}
      {error && <p role="alert">{error}</p>}
    </div>
  );
}
