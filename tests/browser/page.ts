// The steps of the portal's organization pages, as the browser makes them
// with roster's TypeScript client (clients/typescript: Connect JSON over
// fetch, from this page's origin to roster's, so CORS), as the signed-in
// person. The test passes roster's address and two people's tokens in the
// fragment, which never reaches a server; run.mjs bundles this file
// (esbuild) into the page's script.
import {
  Code,
  ConnectError,
  InvitationState,
  type Member,
  Role,
  createRoster,
  timestampDate,
} from "../../clients/typescript/src/index.js";

const params = new URLSearchParams(location.hash.slice(1));
const baseUrl = params.get("roster") ?? "";
const alice = createRoster({ baseUrl, token: params.get("alice") ?? "" });
const bob = createRoster({ baseUrl, token: params.get("bob") ?? "" });

/** A member as the page shows it, and as the test reads it. */
function shown(member: Member) {
  return {
    userId: member.userId,
    email: member.email,
    role: Role[member.role],
    joinTime: member.joinTime ? timestampDate(member.joinTime).toISOString() : null,
    organizationId: member.organizationId,
  };
}

function show(tableId: string, members: ReturnType<typeof shown>[]) {
  const table = document.getElementById(tableId) as HTMLTableElement;
  for (const member of members) {
    const row = table.insertRow();
    for (const value of [member.userId, member.email, member.role, member.joinTime]) {
      row.insertCell().textContent = value;
    }
  }
}

async function steps() {
  let requestId: string | null = null;
  const { organization } = await alice.organizations.createOrganization(
    { name: "Browser Co", slug: "browser-co" },
    // Readable from script only because roster's CORS exposes it.
    { onHeader: (headers) => (requestId = headers.get("x-request-id")) },
  );
  if (!organization) throw new Error("CreateOrganization answered no organization");
  const organizationId = organization.id;
  const { invitation } = await alice.memberships.createInvitation({
    organizationId,
    email: "bob@example.com",
    role: Role.MEMBER,
  });
  if (!invitation) throw new Error("CreateInvitation answered no invitation");
  await bob.memberships.acceptInvitation({ id: invitation.id });
  const members = (await alice.memberships.listMembers({ organizationId })).members.map(shown);
  show("members", members);
  // A member may not manage members: the refusal reaches the page as a
  // ConnectError with the code.
  let refused: string | null = null;
  try {
    await bob.memberships.removeMember({ organizationId, userId: "alice" });
  } catch (error) {
    refused = ConnectError.from(error).code === Code.PermissionDenied ? "PermissionDenied" : String(error);
  }
  const { member: promoted } = await alice.memberships.updateMemberRole({
    organizationId,
    userId: "bob",
    role: Role.ADMIN,
  });
  await alice.memberships.removeMember({ organizationId, userId: "bob" });
  const after = (await alice.memberships.listMembers({ organizationId })).members.map(shown);
  show("after", after);
  return {
    organization: { id: organization.id, name: organization.name, slug: organization.slug },
    requestId,
    invitationState: InvitationState[invitation.state],
    members,
    refused,
    promoted: promoted ? shown(promoted) : null,
    after,
  };
}

steps().then(
  (outcome) => {
    document.getElementById("status")!.textContent = `Done: ${outcome.organization.name}`;
    (window as any).rosterOutcome = outcome;
  },
  (error) => {
    const status = document.getElementById("status")!;
    status.textContent = String(error);
    status.className = "error";
    (window as any).rosterOutcome = { error: String(error) };
  },
);
