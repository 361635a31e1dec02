import type { UserIdentity } from "convex/server";

/** The user as Convex returned them, or a signed-out note. */
export function Identity({ me, source }: { me: UserIdentity | null; source: string }) {
  if (!me) {
    return (
      <p id="signed-out" data-source={source}>
        Not signed in.
      </p>
    );
  }
  return (
    <dl id="identity" data-source={source}>
      <dt>name</dt>
      <dd id="name">{me.name}</dd>
      <dt>email</dt>
      <dd id="email">{me.email}</dd>
      <dt>subject</dt>
      <dd id="subject">{me.subject}</dd>
      <dt>tokenIdentifier</dt>
      <dd id="tokenIdentifier">{me.tokenIdentifier}</dd>
    </dl>
  );
}
