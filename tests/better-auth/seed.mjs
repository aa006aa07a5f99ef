// Makes a Better Auth database the way a running portal would, through
// Better Auth's own API (`auth.api.*`) and its own schema migration, for
// roster's import tests (tests/api/import.rs). Prints a JSON summary of what
// Better Auth holds afterwards, read back through Better Auth's adapter.
//
//   node seed.mjs --sqlite <file> | --postgres <url>
//                 [--plural] [--uuid-ids] [--problems]
//
// --plural    keeps the tables under plural names (users, organizations, ...)
// --uuid-ids  lets Better Auth generate UUIDs as ids instead of its random strings
// --problems  afterwards breaks rows the way old or hand-edited data does
//             (with SQL on Better Auth's tables: its API refuses to)

import { betterAuth } from "better-auth";
import { organization } from "better-auth/plugins";
import { getMigrations } from "better-auth/db/migration";
import Database from "better-sqlite3";
import pg from "pg";

function parseArgs(argv) {
  const args = { plural: false, uuidIds: false, problems: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--sqlite") args.sqlite = argv[++i];
    else if (arg === "--postgres") args.postgres = argv[++i];
    else if (arg === "--plural") args.plural = true;
    else if (arg === "--uuid-ids") args.uuidIds = true;
    else if (arg === "--problems") args.problems = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!args.sqlite === !args.postgres) {
    throw new Error("give exactly one of --sqlite <file> or --postgres <url>");
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const names = args.plural
  ? { user: "users", session: "sessions", account: "accounts", verification: "verifications",
      organization: "organizations", member: "members", invitation: "invitations" }
  : { user: "user", session: "session", account: "account", verification: "verification",
      organization: "organization", member: "member", invitation: "invitation" };

const database = args.sqlite
  ? new Database(args.sqlite)
  : new pg.Pool({ connectionString: args.postgres });

// Raw SQL for the few changes Better Auth's API does not make (an expired
// invitation, broken rows); `?` placeholders on both databases.
async function sql(text, params = []) {
  if (args.sqlite) {
    const values = params.map((p) => (p instanceof Date ? p.toISOString() : p));
    return database.prepare(text).run(...values);
  }
  let n = 0;
  return database.query(text.replace(/\?/g, () => `$${++n}`), params);
}

// The same, with foreign keys unchecked: for rows whose referent is gone,
// as when a user was deleted by hand.
async function sqlUnchecked(text, params = []) {
  if (args.sqlite) {
    database.pragma("foreign_keys = OFF");
    try {
      return await sql(text, params);
    } finally {
      database.pragma("foreign_keys = ON");
    }
  }
  const client = await database.connect();
  try {
    await client.query("BEGIN");
    await client.query("SET LOCAL session_replication_role = replica");
    let n = 0;
    const result = await client.query(text.replace(/\?/g, () => `$${++n}`), params);
    await client.query("COMMIT");
    return result;
  } finally {
    client.release();
  }
}

const q = (name) => `"${name}"`;

const auth = betterAuth({
  database,
  secret: "roster-import-fixture-secret-0123456789",
  baseURL: "http://localhost:3000",
  emailAndPassword: { enabled: true },
  user: { modelName: names.user },
  session: { modelName: names.session },
  account: { modelName: names.account },
  verification: { modelName: names.verification },
  advanced: args.uuidIds ? { database: { generateId: "uuid" } } : {},
  plugins: [
    organization({
      // A portal's usual settings: anyone may create organizations, and
      // invitations need not be sent anywhere for this fixture.
      async sendInvitationEmail() {},
      schema: {
        organization: { modelName: names.organization },
        member: { modelName: names.member },
        invitation: { modelName: names.invitation },
      },
    }),
  ],
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

/** Signs a person up; returns their id and the cookie of their session. */
async function signUp(key, name) {
  const email = `${key}@example.com`;
  const { headers, response } = await auth.api.signUpEmail({
    body: { email, password: `password-of-${key}`, name },
    returnHeaders: true,
  });
  const cookie = headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");
  return { id: response.user.id, email, name, headers: new Headers({ cookie }) };
}

const people = {};
for (const [key, name] of [
  ["alice", "Alice Archer"],
  ["bob", "Bob Baker"],
  ["carol", "Carol Clark"],
  ["dave", "Dave Dunn"],
  ["erin", "Erin Evans"],
  ["frank", "Frank Foster"],
  ["grace", "Grace Green"],
  ["heidi", "Heidi Hill"],
]) {
  people[key] = await signUp(key, name);
}

// Alice creates Acme in the portal (she becomes its owner, and it becomes
// the active organization of her session); Bob creates Globex.
const acme = await auth.api.createOrganization({
  body: { name: "Acme Corporation", slug: "acme", logo: "https://example.com/acme.png" },
  headers: people.alice.headers,
});
const globex = await auth.api.createOrganization({
  body: { name: "Globex", slug: "globex" },
  headers: people.bob.headers,
});

// Members with every role, one with two roles at once.
const addMember = (org, person, role) =>
  auth.api.addMember({ body: { organizationId: org.id, userId: person.id, role } });
await addMember(acme, people.bob, "admin");
await addMember(acme, people.carol, "member");
await addMember(acme, people.dave, ["admin", "member"]);
await addMember(acme, people.erin, "owner");
await addMember(globex, people.alice, "member");
await addMember(globex, people.carol, "admin");

// Invitations in every state.
const invite = (org, inviter, email, role) =>
  auth.api.createInvitation({
    body: { organizationId: org.id, email, role },
    headers: inviter.headers,
  });
await invite(acme, people.alice, "newcomer@example.com", "member");
await invite(acme, people.bob, "New.Admin@Example.com", "admin");
const accepted = await invite(acme, people.alice, people.frank.email, "member");
await auth.api.acceptInvitation({
  body: { invitationId: accepted.id },
  headers: people.frank.headers,
});
const rejected = await invite(acme, people.alice, people.grace.email, "admin");
await auth.api.rejectInvitation({
  body: { invitationId: rejected.id },
  headers: people.grace.headers,
});
const cancelled = await invite(globex, people.bob, "changed-mind@example.com", "member");
await auth.api.cancelInvitation({
  body: { invitationId: cancelled.id },
  headers: people.bob.headers,
});
const expired = await invite(globex, people.carol, "too-late@example.com", "member");
await sql(`UPDATE ${q(names.invitation)} SET ${q("expiresAt")} = ? WHERE id = ?`, [
  new Date(Date.now() - 24 * 3600 * 1000),
  expired.id,
]);

// Active organizations on sessions: Alice's is Acme (from creating it),
// Bob's Globex; Carol switches to Globex; Heidi belongs to none.
await auth.api.setActiveOrganization({
  body: { organizationId: globex.id },
  headers: people.carol.headers,
});

if (args.problems) {
  await breakRows();
}

/** Rows that roster must refuse, each a kind the import reports. */
async function breakRows() {
  const org = (name, slug) =>
    auth.api.createOrganization({ body: { name, slug }, headers: people.heidi.headers });
  // A slug that breaks roster's rules, and one on its reserved list.
  const badSlug = await org("Bad Slug", "bad-slug");
  await sql(`UPDATE ${q(names.organization)} SET slug = ? WHERE id = ?`, ["Bad_Slug!", badSlug.id]);
  // A member roster cannot hold, in that organization: reported as well,
  // though the organization is refused already.
  await sqlUnchecked(
    `INSERT INTO ${q(names.member)} (id, ${q("organizationId")}, ${q("userId")}, role, ${q("createdAt")}) VALUES (?, ?, ?, ?, ?)`,
    ["viewer-in-bad-slug", badSlug.id, people.alice.id, "viewer", new Date()],
  );
  await org("Settings Inc", "settings");
  // A slug in capitals: imported in lower case, with a note.
  const shouty = await org("Shouty", "shouty");
  await sql(`UPDATE ${q(names.organization)} SET slug = ? WHERE id = ?`, ["SHOUTY", shouty.id]);
  // A name that is too long.
  const longName = await org("Long Name", "long-name");
  await sql(`UPDATE ${q(names.organization)} SET name = ? WHERE id = ?`, ["N".repeat(150), longName.id]);
  // No owner, but admins: the oldest admin can be promoted.
  const ownerless = await org("Ownerless", "ownerless");
  await addMember(ownerless, people.alice, "admin");
  await addMember(ownerless, people.bob, "admin");
  await sql(
    `UPDATE ${q(names.member)} SET role = ? WHERE ${q("organizationId")} = ? AND ${q("userId")} = ?`,
    ["member", ownerless.id, people.heidi.id],
  );
  // A duplicate membership and a member whose user row is gone.
  const messy = await org("Messy", "messy");
  await addMember(messy, people.carol, "member");
  const [{ createdAt }] = await readAll("member").then((rows) =>
    rows.filter((m) => m.organizationId === messy.id && m.userId === people.carol.id),
  );
  await sql(
    `INSERT INTO ${q(names.member)} (id, ${q("organizationId")}, ${q("userId")}, role, ${q("createdAt")}) VALUES (?, ?, ?, ?, ?)`,
    ["duplicate-member-row", messy.id, people.carol.id, "admin", new Date(createdAt.getTime() + 1000)],
  );
  await sqlUnchecked(
    `INSERT INTO ${q(names.member)} (id, ${q("organizationId")}, ${q("userId")}, role, ${q("createdAt")}) VALUES (?, ?, ?, ?, ?)`,
    ["ghost-member-row", messy.id, "ghost-user", "member", new Date()],
  );
  // An invitation roster cannot hold: owners are made, not invited.
  await invite(messy, people.heidi, "would-be-owner@example.com", "owner");
  // One whose id cannot name it in roster (not URL-safe): it is imported,
  // with a note that its email's link no longer opens it.
  const linkless = await invite(messy, people.heidi, "linkless@example.com", "member");
  await sql(`UPDATE ${q(names.invitation)} SET id = ? WHERE id = ?`, ["link/with slash", linkless.id]);
}

async function readAll(model) {
  const ctx = await auth.$context;
  return ctx.adapter.findMany({ model, limit: 10000 });
}

const iso = (d) => (d instanceof Date ? d.toISOString() : d);
const summary = {
  tables: names,
  users: (await readAll("user")).map((u) => ({ id: u.id, email: u.email, name: u.name })),
  organizations: (await readAll("organization")).map((o) => ({
    id: o.id,
    name: o.name,
    slug: o.slug,
    logo: o.logo ?? "",
    createdAt: iso(o.createdAt),
  })),
  members: (await readAll("member")).map((m) => ({
    id: m.id,
    organizationId: m.organizationId,
    userId: m.userId,
    role: m.role,
    createdAt: iso(m.createdAt),
  })),
  invitations: (await readAll("invitation")).map((i) => ({
    id: i.id,
    organizationId: i.organizationId,
    email: i.email,
    role: i.role,
    status: i.status,
    inviterId: i.inviterId,
    expiresAt: iso(i.expiresAt),
  })),
  sessions: (await readAll("session")).map((s) => ({
    userId: s.userId,
    activeOrganizationId: s.activeOrganizationId ?? null,
  })),
  people: Object.fromEntries(Object.entries(people).map(([k, p]) => [k, p.id])),
};
console.log(JSON.stringify(summary, null, 2));

if (args.sqlite) database.close();
else await database.end();
