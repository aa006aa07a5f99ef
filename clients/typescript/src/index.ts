// roster's TypeScript client: the generated services (src/gen, from
// proto/ by `npm run generate`) and a Connect transport that sends the
// signed-in person's bearer token with every call. In a browser it uses
// fetch (@connectrpc/connect-web), so roster must list the page's origin
// in ROSTER_CORS_ORIGINS; Node 18+ has fetch too.
import { type Client, type Interceptor, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";

import { AuthorizationService } from "./gen/roster/v1/authorization_pb.js";
import { EventService } from "./gen/roster/v1/event_pb.js";
import { MembershipService } from "./gen/roster/v1/membership_pb.js";
import { OrganizationService } from "./gen/roster/v1/organization_pb.js";

export { Code, ConnectError } from "@connectrpc/connect";
export { timestampDate } from "@bufbuild/protobuf/wkt";
export * from "./gen/roster/v1/authorization_pb.js";
export * from "./gen/roster/v1/common_pb.js";
export * from "./gen/roster/v1/event_pb.js";
export * from "./gen/roster/v1/membership_pb.js";
export * from "./gen/roster/v1/organization_pb.js";

export interface RosterOptions {
  /** roster's address, e.g. `https://roster.example.com` (no trailing slash). */
  baseUrl: string;
  /** The bearer token to send; a function is asked before every call. */
  token?: string | (() => string | Promise<string>);
  /**
   * `connect` (the default: JSON bodies, readable in the browser's network
   * tab) or `grpc-web` (binary; also serves StreamEvents).
   */
  protocol?: "connect" | "grpc-web";
}

export interface Roster {
  organizations: Client<typeof OrganizationService>;
  memberships: Client<typeof MembershipService>;
  authorization: Client<typeof AuthorizationService>;
  events: Client<typeof EventService>;
}

/** Clients for each of roster's services, sharing one transport. */
export function createRoster(options: RosterOptions): Roster {
  const bearer: Interceptor = (next) => async (request) => {
    const token = typeof options.token === "function" ? await options.token() : options.token;
    if (token) {
      request.header.set("authorization", `Bearer ${token}`);
    }
    return next(request);
  };
  const settings = { baseUrl: options.baseUrl, interceptors: [bearer] };
  const transport =
    options.protocol === "grpc-web"
      ? createGrpcWebTransport(settings)
      : createConnectTransport(settings);
  return {
    organizations: createClient(OrganizationService, transport),
    memberships: createClient(MembershipService, transport),
    authorization: createClient(AuthorizationService, transport),
    events: createClient(EventService, transport),
  };
}
