#!/usr/bin/env python3
"""A roster client that knows nothing about roster's API in advance.

It is given only the server's address and bearer tokens. Everything else --
which services exist, their methods, the request and reply messages, the
enum values, the error detail types -- it learns at run time from roster's
server reflection (grpc.reflection.v1alpha, which grpcio-reflection's
client speaks). There are no generated *_pb2 modules and no .proto files
here: messages are built from the descriptors the server serves.

    ROSTER_ADDRESS=127.0.0.1:50051 \
    ROSTER_ALICE_TOKEN=... ROSTER_BOB_TOKEN=... ROSTER_AUTHZ_TOKEN=... \
        python3 tests/clients/reflection_client.py

ALICE and BOB are user tokens (sub alice and bob, with their verified
addresses alice@example.com and bob@example.com); AUTHZ is a service token
with the scope authz.check. `roster token` mints them. The flow: Alice
creates an organization, invites Bob as a member, Bob accepts, Bob lists the
members, a service checks Bob's permissions, and Bob fails to delete the
organization. Each step prints a line starting with "ok:"; any failure exits
with status 1 and a line starting with "FAILED:".

tests/api/clients.rs runs this against a freshly started roster.
"""

import os
import random
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

ROSTER_SERVICES = (
    "roster.v1.OrganizationService",
    "roster.v1.MembershipService",
    "roster.v1.EventService",
    "roster.v1.AuthorizationService",
)
# Seconds per call: a hung server fails the run instead of stalling it.
TIMEOUT = 15


class Failure(Exception):
    """A step did not go as expected."""


class CallFailed(Failure):
    """A call ended with a gRPC error; `error` is grpcio's."""

    def __init__(self, path, error):
        super().__init__(f"{path} failed: {error.code().name}: {error.details()}")
        self.error = error


def check(condition, message):
    if not condition:
        raise Failure(message)


def message_class(descriptor):
    """The Python class of a message type known only by its descriptor."""
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)


def read_varint(data, pos):
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def length_delimited_fields(data):
    """(field number, bytes) of each length-delimited field of an encoded message."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = read_varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length, pos = read_varint(data, pos)
            yield number, data[pos : pos + length]
            pos += length
        else:
            raise Failure(f"cannot decode wire type {wire_type} in grpc-status-details-bin")


class Roster:
    """Calls roster's unary methods by name, with messages built from reflection."""

    def __init__(self, address):
        # Loopback needs no proxy, whatever http_proxy says.
        self.channel = grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)])
        self.database = ProtoReflectionDescriptorDatabase(self.channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def services(self):
        return list(self.database.get_services())

    def method(self, service_name, method_name):
        service = self.pool.FindServiceByName(service_name)
        method = service.methods_by_name.get(method_name)
        check(method is not None, f"reflection describes no method {service_name}/{method_name}")
        return method

    def call(self, service_name, method_name, token, fields):
        """Calls a method with a request given as a dict (proto field names).

        Returns the reply as a dict with proto field names and enum names.
        """
        method = self.method(service_name, method_name)
        request_class = message_class(method.input_type)
        reply_class = message_class(method.output_type)
        request = json_format.ParseDict(fields, request_class())
        path = f"/{service_name}/{method_name}"
        stub = self.channel.unary_unary(
            path,
            request_serializer=request_class.SerializeToString,
            response_deserializer=reply_class.FromString,
        )
        try:
            reply = stub(
                request,
                metadata=[("authorization", f"Bearer {token}")],
                timeout=TIMEOUT,
            )
        except grpc.RpcError as error:
            raise CallFailed(path, error) from error
        return json_format.MessageToDict(reply, preserving_proto_field_name=True)

    def error_infos(self, error):
        """The google.rpc.ErrorInfo details of a failed call, as dicts.

        The trailer grpc-status-details-bin holds a google.rpc.Status, whose
        field 3 is a list of google.protobuf.Any (type_url = 1, value = 2).
        Status itself is standard enough to decode by hand; ErrorInfo's
        descriptor comes from reflection, like everything else.
        """
        details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
        check(details is not None, f"{error.code().name} without grpc-status-details-bin")
        info_class = message_class(self.pool.FindMessageTypeByName("google.rpc.ErrorInfo"))
        infos = []
        for number, any_bytes in length_delimited_fields(details):
            if number != 3:
                continue
            parts = dict(length_delimited_fields(any_bytes))
            if parts.get(1, b"").decode() == "type.googleapis.com/google.rpc.ErrorInfo":
                info = info_class.FromString(parts.get(2, b""))
                infos.append(json_format.MessageToDict(info, preserving_proto_field_name=True))
        return infos


def step(message):
    print(f"ok: {message}", flush=True)


def run(address, alice, bob, authz):
    roster = Roster(address)

    services = roster.services()
    missing = [name for name in ROSTER_SERVICES if name not in services]
    check(not missing, f"reflection does not list {missing}; it lists {services}")
    step(f"reflection lists {', '.join(sorted(services))}")

    # Every file the flow needs is fetched now, through reflection.
    for service in ROSTER_SERVICES:
        methods = sorted(roster.pool.FindServiceByName(service).methods_by_name)
        check(methods, f"{service} has no methods")
    step("descriptors of every roster service resolved through reflection")

    slug = f"reflected-{random.randrange(10**6):06d}"
    created = roster.call(
        "roster.v1.OrganizationService",
        "CreateOrganization",
        alice,
        {"name": "Reflected", "slug": slug},
    )
    organization = created.get("organization", {})
    org_id = organization.get("id", "")
    check(org_id, f"CreateOrganization replied without an organization id: {created}")
    check(organization.get("slug") == slug, f"CreateOrganization: wrong slug: {created}")
    step(f"CreateOrganization: alice created {slug} ({org_id})")

    invited = roster.call(
        "roster.v1.MembershipService",
        "CreateInvitation",
        alice,
        {"organization_id": org_id, "email": "bob@example.com", "role": "ROLE_MEMBER"},
    )
    invitation = invited.get("invitation", {})
    invitation_id = invitation.get("id", "")
    check(invitation_id, f"CreateInvitation replied without an invitation id: {invited}")
    check(invitation.get("role") == "ROLE_MEMBER", f"CreateInvitation: wrong role: {invited}")
    check(
        invitation.get("state") == "INVITATION_STATE_PENDING",
        f"CreateInvitation: not pending: {invited}",
    )
    step(f"CreateInvitation: alice invited bob@example.com as ROLE_MEMBER ({invitation_id})")

    accepted = roster.call(
        "roster.v1.MembershipService", "AcceptInvitation", bob, {"id": invitation_id}
    )
    member = accepted.get("member", {})
    check(member.get("user_id") == "bob", f"AcceptInvitation: wrong member: {accepted}")
    check(member.get("role") == "ROLE_MEMBER", f"AcceptInvitation: wrong role: {accepted}")
    check(accepted.get("revision"), f"AcceptInvitation replied without a revision: {accepted}")
    step("AcceptInvitation: bob joined as ROLE_MEMBER")

    listed = roster.call(
        "roster.v1.MembershipService", "ListMembers", bob, {"organization_id": org_id}
    )
    roles = {m.get("user_id"): m.get("role") for m in listed.get("members", [])}
    check(
        roles == {"alice": "ROLE_OWNER", "bob": "ROLE_MEMBER"},
        f"ListMembers: expected alice as owner and bob as member, got {listed}",
    )
    step("ListMembers: alice ROLE_OWNER, bob ROLE_MEMBER")

    for permission, expected in (("applications.read", True), ("organization.delete", False)):
        checked = roster.call(
            "roster.v1.AuthorizationService",
            "CheckPermission",
            authz,
            {
                "check": {"user_id": "bob", "organization_id": org_id, "permission": permission},
                "at_least_revision": accepted["revision"],
            },
        )
        result = checked.get("result", {})
        # proto3 JSON leaves out false and default values.
        allowed = result.get("allowed", False)
        check(
            allowed is expected,
            f"CheckPermission bob {permission}: expected allowed={expected}, got {checked}",
        )
        check(result.get("role") == "ROLE_MEMBER", f"CheckPermission: wrong role: {checked}")
        step(f"CheckPermission: bob {permission} allowed={str(expected).lower()}")

    try:
        roster.call("roster.v1.OrganizationService", "DeleteOrganization", bob, {"id": org_id})
    except CallFailed as failure:
        error = failure.error
        check(
            error.code() == grpc.StatusCode.PERMISSION_DENIED,
            f"DeleteOrganization by bob: expected PERMISSION_DENIED, got {error.code().name}: {error.details()}",
        )
        reasons = [info.get("reason") for info in roster.error_infos(error)]
        check(
            reasons == ["INSUFFICIENT_PERMISSION"],
            f"DeleteOrganization by bob: expected ErrorInfo INSUFFICIENT_PERMISSION, got {reasons}",
        )
    else:
        raise Failure("DeleteOrganization by bob (a member) succeeded")
    step("DeleteOrganization: bob is denied, ErrorInfo reason INSUFFICIENT_PERMISSION")

    roster.channel.close()


def main():
    names = ("ROSTER_ADDRESS", "ROSTER_ALICE_TOKEN", "ROSTER_BOB_TOKEN", "ROSTER_AUTHZ_TOKEN")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        print(f"FAILED: set {', '.join(missing)} (see this script's docstring)", file=sys.stderr)
        return 2
    address, alice, bob, authz = (os.environ[name] for name in names)
    print(f"reflection client: roster at {address}", flush=True)
    try:
        run(address, alice, bob, authz)
    except Failure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        # Reflection itself failed (the server is down, say).
        print(f"FAILED: reflection failed: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    except KeyError as error:
        # The descriptor pool raises KeyError for a name reflection does not know.
        print(f"FAILED: reflection does not describe {error}", file=sys.stderr)
        return 1
    print("reflection client: all steps passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
