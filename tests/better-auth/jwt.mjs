// A Better Auth portal with its JWT plugin, for roster's JWKS URL tests
// (tests/api/better_auth_jwt.rs): Better Auth on an in-memory SQLite
// database, served over Node's http on 127.0.0.1 (its own handler, so
// /api/auth/jwks is Better Auth's endpoint), with people signed up through
// its API.
//
//   node jwt.mjs
//
// Prints one JSON line once it listens:
//   {"jwks": <url>, "baseURL": <url>, "users": {"alice": {id, email, name, emailVerified}, ...}}
// then answers one JSON line per command read from stdin:
//   token <who>   a token the plugin issues for <who>'s session  {"token"}
//   rotate        a new signing key, made by the plugin           {"kid"}
//   forge <who>   the payload of <who>'s token, signed by a key Better Auth
//                 never had, naming the current kid               {"token"}
//   fetches       requests served on /api/auth/jwks so far        {"fetches"}
// and exits when stdin closes.

import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { generateKeyPairSync, sign } from "node:crypto";
import { betterAuth } from "better-auth";
import { createJwk, jwt } from "better-auth/plugins";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import Database from "better-sqlite3";

let fetches = 0;
let handler = null;
const server = createServer((request, response) => {
  if (request.url.split("?")[0] === "/api/auth/jwks") fetches++;
  handler(request, response);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const baseURL = `http://127.0.0.1:${server.address().port}`;

// The plugin's defaults: EdDSA (Ed25519) keys, issuer and audience the
// base URL, the session's user as the payload.
const jwtOptions = {};
const auth = betterAuth({
  database: new Database(":memory:"),
  secret: "roster-jwt-fixture-secret-0123456789",
  baseURL,
  emailAndPassword: { enabled: true },
  plugins: [jwt(jwtOptions)],
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();
handler = toNodeHandler(auth);

/** Signs a person up; returns their id and the cookie of their session. */
async function signUp(key, name, verified) {
  const email = `${key}@example.com`;
  const { headers, response } = await auth.api.signUpEmail({
    body: { email, password: `password-of-${key}`, name },
    returnHeaders: true,
  });
  if (verified) {
    // What Better Auth's email verification ends with.
    const ctx = await auth.$context;
    await ctx.internalAdapter.updateUser(response.user.id, { emailVerified: true });
  }
  const cookie = headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");
  return { id: response.user.id, email, name, emailVerified: verified, headers: new Headers({ cookie }) };
}

const people = {
  alice: await signUp("alice", "Alice Archer", true),
  bob: await signUp("bob", "Bob Baker", false),
};

const tokenOf = async (who) => (await auth.api.getToken({ headers: people[who].headers })).token;

const b64url = (buffer) => Buffer.from(buffer).toString("base64url");
const decoded = (part) => JSON.parse(Buffer.from(part, "base64url"));

async function forge(who) {
  const [header, payload] = (await tokenOf(who)).split(".").slice(0, 2).map(decoded);
  const { privateKey } = generateKeyPairSync("ed25519");
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${signingInput}.${b64url(sign(null, Buffer.from(signingInput), privateKey))}`;
}

async function answer(line) {
  const [command, who] = line.trim().split(/\s+/);
  switch (command) {
    case "token":
      return { token: await tokenOf(who) };
    case "rotate": {
      const key = await createJwk({ context: await auth.$context }, jwtOptions);
      return { kid: key.id };
    }
    case "forge":
      return { token: await forge(who) };
    case "fetches":
      return { fetches };
    default:
      throw new Error(`unknown command ${line}`);
  }
}

const users = Object.fromEntries(
  Object.entries(people).map(([key, { id, email, name, emailVerified }]) => [key, { id, email, name, emailVerified }]),
);
console.log(JSON.stringify({ jwks: `${baseURL}/api/auth/jwks`, baseURL, users }));

const input = createInterface({ input: process.stdin });
for await (const line of input) {
  if (!line.trim()) continue;
  try {
    console.log(JSON.stringify(await answer(line)));
  } catch (err) {
    console.log(JSON.stringify({ error: String(err?.stack ?? err) }));
  }
}
server.close();
process.exit(0);
