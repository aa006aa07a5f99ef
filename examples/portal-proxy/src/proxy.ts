// The portal backend's proxy in front of the Provider Portal, as a small
// Node server: for every request on an organization's applications,
// credentials or subscriptions it asks roster whether the signed-in
// person may do that, with their own bearer token, and forwards the
// request only if roster says yes.
//
//   GET    /{slug}/applications            -> GET    {UPSTREAM_URL}/api/applications
//   POST   /{slug}/applications/{id}/credentials -> POST /api/applications/{id}/credentials
//   DELETE /{slug}/subscriptions/{id}      -> DELETE /api/subscriptions/{id}
//
// roster's CheckPermission, keyed by the slug in the URL, answers the
// person's role, whether the permission (`applications.read`,
// `credentials.create`, ...) is allowed, and the organization's developer
// id, all in one call and fresh on every request (a removed member is
// refused at once). As the portal does:
//
//   no bearer token, or one roster refuses  401
//   not a member, or no such slug            404 (never reveal that it exists)
//   a member who may read but not write      403 "read-only"
//   roster unreachable or failing            503 / 502, and nothing forwarded
//   allowed                                  forwarded with X-Portal-Developer-ID,
//                                            the Provider Portal's answer streamed back
//
// The Provider Portal is called with the portal's own token (a7prt-...),
// never with the person's: their token is for roster.
//
// Configuration (environment):
//   ROSTER_URL      roster's address, e.g. http://127.0.0.1:50051
//   UPSTREAM_URL    the Provider Portal's base URL (its API is under /api)
//   UPSTREAM_TOKEN  the portal token the Provider Portal expects
//   PORT            where to listen on 127.0.0.1 (HOST for another address);
//                   0, the default, takes a free port. The bound port is
//                   printed on stdout as one line.
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";

import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

import {
  AuthorizationService,
  Code,
  ConnectError,
  Role,
} from "../../../clients/typescript/src/index.js";

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`portal-proxy: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const upstream = new URL(required("UPSTREAM_URL"));
const upstreamToken = required("UPSTREAM_TOKEN");

// One HTTP/2 connection to roster, reused by every check.
const roster = createClient(
  AuthorizationService,
  createConnectTransport({ baseUrl: required("ROSTER_URL"), httpVersion: "2" }),
);

/** What the portal proxies, and the permission each method needs. */
const RESOURCES = new Set(["applications", "credentials", "subscriptions"]);
const ACTIONS: Record<string, string> = {
  GET: "read",
  HEAD: "read",
  POST: "create",
  PUT: "update",
  PATCH: "update",
  DELETE: "delete",
};

/** A request the proxy handles, read from its method and URL. */
interface Route {
  slug: string;
  /** e.g. `credentials.create` */
  permission: string;
  /** The Provider Portal's path, with the query: `/api/applications/...?...` */
  upstreamPath: string;
}

/**
 * `/{slug}/{collection}/...` with a collection the portal proxies, or
 * undefined. The permission is named after the innermost collection:
 * `/applications/{id}/credentials` is about credentials.
 */
function route(method: string, url: string): Route | "bad method" | undefined {
  // URL parsing resolves `.` and `..` (also percent-encoded); an encoded
  // slash or backslash could still move the path upstream: refused.
  const { pathname, search } = new URL(url, "http://proxy");
  if (/%2f|%5c/i.test(pathname)) {
    return undefined;
  }
  const [, slug, ...rest] = pathname.split("/");
  if (!slug || !rest[0] || !RESOURCES.has(rest[0])) {
    return undefined;
  }
  const action = ACTIONS[method];
  if (!action) {
    return "bad method";
  }
  // Collections and ids alternate: only even places name a collection.
  const resource = rest.filter((part, i) => i % 2 === 0 && RESOURCES.has(part)).at(-1);
  return {
    slug,
    permission: `${resource}.${action}`,
    upstreamPath: `/api/${rest.join("/")}${search}`,
  };
}

function answer(res: http.ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ message }));
}

/** How a failed call to roster is answered: never by forwarding. */
function refusal(error: unknown): [number, string] {
  const { code, rawMessage } = ConnectError.from(error);
  switch (code) {
    case Code.Unauthenticated:
      return [401, "sign in again"];
    // A slug no organization could have (too short, reserved, ...).
    case Code.InvalidArgument:
      return [404, "not found"];
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return [503, `roster is unavailable: ${rawMessage}`];
    default:
      return [502, `roster failed: ${rawMessage}`];
  }
}

// Headers passed on to the Provider Portal, and back; everything else
// (cookies, the person's authorization, hop-by-hop headers) stays here.
const REQUEST_HEADERS = ["accept", "content-type", "content-length", "if-match", "if-none-match"];
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  upstreamPath: string,
  developerId: string,
): void {
  const headers: http.OutgoingHttpHeaders = {
    authorization: `Bearer ${upstreamToken}`,
    "x-portal-developer-id": developerId,
  };
  for (const name of REQUEST_HEADERS) {
    if (req.headers[name] !== undefined) headers[name] = req.headers[name];
  }
  const target = new URL(upstream.pathname.replace(/\/$/, "") + upstreamPath, upstream);
  const send = target.protocol === "https:" ? https.request : http.request;
  const outgoing = send(target, { method: req.method, headers }, (reply) => {
    const back = Object.entries(reply.headers).filter(([name]) => !HOP_BY_HOP.has(name));
    res.writeHead(reply.statusCode ?? 502, Object.fromEntries(back));
    reply.pipe(res);
  });
  outgoing.on("error", (error) => {
    if (res.headersSent) res.destroy(error);
    else answer(res, 502, `the Provider Portal is unreachable: ${error.message}`);
  });
  req.pipe(outgoing);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const found = route(req.method ?? "", req.url ?? "/");
  if (found === undefined) return answer(res, 404, "not found");
  if (found === "bad method") return answer(res, 405, "method not allowed");

  const authorization = req.headers.authorization;
  if (!authorization || !/^bearer \S/i.test(authorization)) {
    return answer(res, 401, "sign in first");
  }

  let result;
  try {
    ({ result } = await roster.checkPermission(
      { check: { organizationSlug: found.slug, permission: found.permission } },
      { headers: { authorization }, timeoutMs: 5_000 },
    ));
  } catch (error) {
    return answer(res, ...refusal(error));
  }
  // ROLE_UNSPECIFIED: not a member, or no organization has this slug.
  if (!result || result.role === Role.UNSPECIFIED) return answer(res, 404, "not found");
  if (!result.allowed) return answer(res, 403, "read-only");
  if (!result.developerId) return answer(res, 502, "roster answered no developer id");
  forward(req, res, found.upstreamPath, result.developerId);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    if (res.headersSent) res.destroy();
    else answer(res, 500, String(error));
  });
});
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", () => {
  console.log((server.address() as AddressInfo).port);
});
