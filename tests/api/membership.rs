//! MembershipService: members, roles, removal, leaving, ownership transfer.

use roster::pb::{self, get_organization_request::Key};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error, assert_invalid},
};

fn role_change(org: &str, user: &str, role: pb::Role) -> pb::UpdateMemberRoleRequest {
    pb::UpdateMemberRoleRequest {
        organization_id: org.to_owned(),
        user_id: user.to_owned(),
        role: role.into(),
    }
}

fn removal(org: &str, user: &str) -> pb::RemoveMemberRequest {
    pb::RemoveMemberRequest {
        organization_id: org.to_owned(),
        user_id: user.to_owned(),
    }
}

backend_tests!(
    list_members_shows_role_email_name_and_join_time_in_joining_order,
    list_members_filters_by_role_searches_by_prefix_and_pages,
    get_member_reads_one_member,
    admins_manage_admins_and_members_but_only_owners_touch_owners,
    the_last_owner_cannot_be_demoted_removed_or_leave,
    a_removed_member_loses_access_at_once,
    members_may_leave,
    transferring_ownership_swaps_roles_in_one_step,
    setting_the_role_a_member_already_has_changes_nothing,
);

async fn list_members_shows_role_email_name_and_join_time_in_joining_order(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    app.add_member("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let members = app
        .members("carol")
        .list_members(pb::ListMembersRequest {
            organization_id: org.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let summary: Vec<_> = members
        .members
        .iter()
        .map(|m| {
            (
                m.user_id.as_str(),
                m.email.as_str(),
                m.display_name.as_str(),
                m.role(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("alice", "alice@example.com", "Alice", pb::Role::Owner),
            ("bob", "bob@example.com", "Bob", pb::Role::Admin),
            ("carol", "carol@example.com", "Carol", pb::Role::Member),
        ]
    );
    assert!(
        members
            .members
            .iter()
            .all(|m| m.join_time.is_some() && m.organization_id == org.id)
    );
    assert!(members.next_page_token.is_empty());
}

async fn list_members_filters_by_role_searches_by_prefix_and_pages(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    for (user, role) in [
        ("bob", pb::Role::Admin),
        ("bobby", pb::Role::Member),
        ("carol", pb::Role::Member),
        ("dave", pb::Role::Member),
        ("erin", pb::Role::Admin),
    ] {
        app.add_member("alice", &org.id, user, role).await;
    }
    let list = |role: pb::Role, search: &str, page_size: i32, page_token: String| {
        let mut client = app.members("carol");
        let request = pb::ListMembersRequest {
            organization_id: org.id.clone(),
            page_size,
            page_token,
            role: role.into(),
            search: search.to_owned(),
        };
        async move { client.list_members(request).await.unwrap().into_inner() }
    };
    let users = |reply: &pb::ListMembersResponse| {
        reply
            .members
            .iter()
            .map(|m| m.user_id.clone())
            .collect::<Vec<_>>()
    };

    assert_eq!(
        users(&list(pb::Role::Admin, "", 0, String::new()).await),
        ["bob", "erin"]
    );
    assert_eq!(
        users(&list(pb::Role::Member, "", 0, String::new()).await),
        ["bobby", "carol", "dave"]
    );
    // Email prefix, case-insensitively; and display-name prefix.
    assert_eq!(
        users(&list(pb::Role::Unspecified, "BOB", 0, String::new()).await),
        ["bob", "bobby"]
    );
    assert_eq!(
        users(&list(pb::Role::Unspecified, "Car", 0, String::new()).await),
        ["carol"]
    );
    assert_eq!(
        users(&list(pb::Role::Member, "bob", 0, String::new()).await),
        ["bobby"]
    );
    // LIKE wildcards in the search are literal characters.
    assert!(users(&list(pb::Role::Unspecified, "%", 0, String::new()).await).is_empty());
    assert!(users(&list(pb::Role::Unspecified, "_ob", 0, String::new()).await).is_empty());

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(pb::Role::Unspecified, "", 2, token).await;
        assert!(page.members.len() <= 2);
        seen.extend(users(&page));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["alice", "bob", "bobby", "carol", "dave", "erin"]);

    // A token from one filter is refused with another.
    let first = list(pb::Role::Member, "", 1, String::new()).await;
    let misuse = app
        .members("carol")
        .list_members(pb::ListMembersRequest {
            organization_id: org.id.clone(),
            page_token: first.next_page_token,
            role: pb::Role::Admin.into(),
            ..Default::default()
        })
        .await;
    assert_invalid(misuse, "page_token");
}

async fn get_member_reads_one_member(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    let bob = app
        .members("bob")
        .get_member(pb::GetMemberRequest {
            organization_id: org.id.clone(),
            user_id: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(
        (bob.user_id.as_str(), bob.role()),
        ("alice", pb::Role::Owner)
    );
    let missing = app
        .members("bob")
        .get_member(pb::GetMemberRequest {
            organization_id: org.id.clone(),
            user_id: "nobody".into(),
        })
        .await;
    assert_error(missing, Code::NotFound, "MEMBER_NOT_FOUND");
    let outsider = app
        .members("mallory")
        .get_member(pb::GetMemberRequest {
            organization_id: org.id,
            user_id: "alice".into(),
        })
        .await;
    assert_error(outsider, Code::NotFound, "ORGANIZATION_NOT_FOUND");
}

async fn admins_manage_admins_and_members_but_only_owners_touch_owners(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    app.add_member("alice", &org.id, "carol", pb::Role::Member)
        .await;
    app.add_member("alice", &org.id, "dave", pb::Role::Owner)
        .await;

    let promoted = app
        .members("bob")
        .update_member_role(role_change(&org.id, "carol", pb::Role::Admin))
        .await
        .unwrap();
    assert_eq!(
        promoted.into_inner().member.unwrap().role(),
        pb::Role::Admin
    );
    app.members("bob")
        .update_member_role(role_change(&org.id, "carol", pb::Role::Member))
        .await
        .unwrap();

    let make_owner = app
        .members("bob")
        .update_member_role(role_change(&org.id, "carol", pb::Role::Owner))
        .await;
    assert_error(make_owner, Code::PermissionDenied, "OWNER_ROLE_REQUIRED");
    let demote_owner = app
        .members("bob")
        .update_member_role(role_change(&org.id, "dave", pb::Role::Admin))
        .await;
    assert_error(demote_owner, Code::PermissionDenied, "OWNER_ROLE_REQUIRED");
    let remove_owner = app
        .members("bob")
        .remove_member(removal(&org.id, "dave"))
        .await;
    assert_error(remove_owner, Code::PermissionDenied, "OWNER_ROLE_REQUIRED");
    assert_eq!(
        app.role_of("alice", &org.id, "dave").await,
        Some(pb::Role::Owner)
    );
    assert_eq!(
        app.role_of("alice", &org.id, "carol").await,
        Some(pb::Role::Member)
    );

    // Owners may.
    app.members("alice")
        .update_member_role(role_change(&org.id, "carol", pb::Role::Owner))
        .await
        .unwrap();
    app.members("alice")
        .update_member_role(role_change(&org.id, "dave", pb::Role::Member))
        .await
        .unwrap();
    assert_eq!(
        app.role_of("alice", &org.id, "carol").await,
        Some(pb::Role::Owner)
    );
    assert_eq!(
        app.role_of("alice", &org.id, "dave").await,
        Some(pb::Role::Member)
    );

    // Members manage nothing.
    let by_member = app
        .members("dave")
        .update_member_role(role_change(&org.id, "bob", pb::Role::Member))
        .await;
    assert_error(by_member, Code::PermissionDenied, "INSUFFICIENT_PERMISSION");
    let remove_by_member = app
        .members("dave")
        .remove_member(removal(&org.id, "bob"))
        .await;
    assert_error(
        remove_by_member,
        Code::PermissionDenied,
        "INSUFFICIENT_PERMISSION",
    );
}

async fn the_last_owner_cannot_be_demoted_removed_or_leave(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;

    let demote = app
        .members("alice")
        .update_member_role(role_change(&org.id, "alice", pb::Role::Admin))
        .await;
    assert_error(
        demote,
        Code::FailedPrecondition,
        "YOU_CANNOT_LEAVE_THE_ORGANIZATION_WITHOUT_AN_OWNER",
    );
    let remove = app
        .members("alice")
        .remove_member(removal(&org.id, "alice"))
        .await;
    assert_error(
        remove,
        Code::FailedPrecondition,
        "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER",
    );
    let leave = app
        .members("alice")
        .leave_organization(pb::LeaveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await;
    assert_error(
        leave,
        Code::FailedPrecondition,
        "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER",
    );
    assert_eq!(
        app.role_of("alice", &org.id, "alice").await,
        Some(pb::Role::Owner)
    );

    // With a second owner, one of them may go.
    app.members("alice")
        .update_member_role(role_change(&org.id, "bob", pb::Role::Owner))
        .await
        .unwrap();
    app.members("alice")
        .leave_organization(pb::LeaveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(app.role_of("bob", &org.id, "alice").await, None);
    let last = app
        .members("bob")
        .leave_organization(pb::LeaveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await;
    assert_error(
        last,
        Code::FailedPrecondition,
        "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER",
    );
}

async fn a_removed_member_loses_access_at_once(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    app.orgs("bob")
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Id(org.id.clone())),
        })
        .await
        .unwrap();

    app.members("alice")
        .remove_member(removal(&org.id, "bob"))
        .await
        .unwrap();

    let read = app
        .orgs("bob")
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Id(org.id.clone())),
        })
        .await;
    assert_error(read, Code::NotFound, "ORGANIZATION_NOT_FOUND");
    let list = app
        .members("bob")
        .list_members(pb::ListMembersRequest {
            organization_id: org.id.clone(),
            ..Default::default()
        })
        .await;
    assert_error(list, Code::NotFound, "ORGANIZATION_NOT_FOUND");
    let again = app
        .members("alice")
        .remove_member(removal(&org.id, "bob"))
        .await;
    assert_error(again, Code::NotFound, "MEMBER_NOT_FOUND");
}

async fn members_may_leave(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    app.orgs("bob")
        .set_active_organization(pb::SetActiveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await
        .unwrap();
    app.members("bob")
        .leave_organization(pb::LeaveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(app.role_of("alice", &org.id, "bob").await, None);
    let active = app
        .orgs("bob")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap();
    assert!(active.into_inner().organization.is_none());
    let twice = app
        .members("bob")
        .leave_organization(pb::LeaveOrganizationRequest {
            organization_id: org.id,
        })
        .await;
    assert_error(twice, Code::NotFound, "ORGANIZATION_NOT_FOUND");
}

async fn transferring_ownership_swaps_roles_in_one_step(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    app.add_member("alice", &org.id, "carol", pb::Role::Admin)
        .await;

    let by_admin = app
        .members("carol")
        .transfer_ownership(pb::TransferOwnershipRequest {
            organization_id: org.id.clone(),
            new_owner_user_id: "bob".into(),
        })
        .await;
    assert_error(by_admin, Code::PermissionDenied, "INSUFFICIENT_PERMISSION");
    let to_self = app
        .members("alice")
        .transfer_ownership(pb::TransferOwnershipRequest {
            organization_id: org.id.clone(),
            new_owner_user_id: "alice".into(),
        })
        .await;
    assert_invalid(to_self, "new_owner_user_id");
    let to_stranger = app
        .members("alice")
        .transfer_ownership(pb::TransferOwnershipRequest {
            organization_id: org.id.clone(),
            new_owner_user_id: "mallory".into(),
        })
        .await;
    assert_error(to_stranger, Code::NotFound, "MEMBER_NOT_FOUND");

    let reply = app
        .members("alice")
        .transfer_ownership(pb::TransferOwnershipRequest {
            organization_id: org.id.clone(),
            new_owner_user_id: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.new_owner.unwrap().role(), pb::Role::Owner);
    assert_eq!(reply.previous_owner.unwrap().role(), pb::Role::Admin);
    assert_eq!(
        app.role_of("bob", &org.id, "bob").await,
        Some(pb::Role::Owner)
    );
    assert_eq!(
        app.role_of("bob", &org.id, "alice").await,
        Some(pb::Role::Admin)
    );
    // Alice is no longer an owner: she cannot delete the organization.
    let delete = app
        .orgs("alice")
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id,
            ..Default::default()
        })
        .await;
    assert_error(delete, Code::PermissionDenied, "INSUFFICIENT_PERMISSION");
}

async fn setting_the_role_a_member_already_has_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    // Even the last owner may be "changed" to owner.
    let same = app
        .members("alice")
        .update_member_role(role_change(&org.id, "alice", pb::Role::Owner))
        .await
        .unwrap();
    assert_eq!(same.into_inner().member.unwrap().role(), pb::Role::Owner);
    let missing = app
        .members("alice")
        .update_member_role(role_change(&org.id, "nobody", pb::Role::Admin))
        .await;
    assert_error(missing, Code::NotFound, "MEMBER_NOT_FOUND");
}
