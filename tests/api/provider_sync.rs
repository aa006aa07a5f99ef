//! The reference consumer (`examples/provider_sync.rs`): after a random
//! workload with server and consumer restarts, its mirror equals roster's
//! database.

#[path = "../../examples/provider_sync/mirror.rs"]
mod mirror;

use std::{collections::BTreeMap, path::Path, time::Duration};

use mirror::{Identity, Mirror};
use prost_types::FieldMask;
use roster::pb;
use sea_orm::{ConnectionTrait, Database, Statement};

use crate::{
    backend_tests,
    helpers::{Backend, Events, TestApp},
};

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % sides as u64) as usize
    }
}

/// Follows the stream from the saved cursor until it has been quiet for a
/// while, saving after every event, like the example does.
async fn consume(client: &mut Events, state: &Path, max_events: usize) -> usize {
    let mut mirror = Mirror::load(state).unwrap();
    let mut stream = client
        .stream_events(pb::StreamEventsRequest {
            after_cursor: mirror.cursor.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut applied = 0;
    while applied < max_events {
        match tokio::time::timeout(Duration::from_millis(1500), stream.message()).await {
            Ok(Ok(Some(reply))) => {
                mirror.apply(&reply.event.unwrap());
                mirror.save(state).unwrap();
                applied += 1;
            }
            _ => break,
        }
    }
    applied
}

/// Identities as roster's database has them.
async fn database_identities(app: &TestApp) -> BTreeMap<String, Identity> {
    let db = Database::connect(&app.config.database_url).await.unwrap();
    let backend = db.get_database_backend();
    let mut identities = BTreeMap::new();
    for row in db
        .query_all_raw(Statement::from_string(
            backend,
            // Deleted ones wait in the mirror's `deleted` until purged.
            "SELECT id, developer_id, name, slug FROM organizations WHERE deleted_at IS NULL",
        ))
        .await
        .unwrap()
    {
        let id: uuid::Uuid = row.try_get("", "id").unwrap();
        let developer_id: String = row.try_get("", "developer_id").unwrap();
        identities.insert(
            id.to_string(),
            Identity {
                developer_id,
                name: row.try_get("", "name").unwrap(),
                slug: row.try_get("", "slug").unwrap(),
                members: BTreeMap::new(),
            },
        );
    }
    for row in db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT organization_id, user_id, role FROM memberships",
        ))
        .await
        .unwrap()
    {
        let org: uuid::Uuid = row.try_get("", "organization_id").unwrap();
        // A deleted organization's members wait with it.
        let Some(identity) = identities.get_mut(&org.to_string()) else {
            continue;
        };
        identity.members.insert(
            row.try_get("", "user_id").unwrap(),
            row.try_get("", "role").unwrap(),
        );
    }
    db.close().await.unwrap();
    identities
}

backend_tests!(the_mirror_equals_the_database_after_a_random_workload_with_restarts,);

async fn the_mirror_equals_the_database_after_a_random_workload_with_restarts(backend: Backend) {
    let mut app = TestApp::spawn_with(&backend, |c| c.max_owned_organizations = 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("mirror.json");
    let mut dice = Dice(0x5eed_1234_abcd_0001);
    let people = ["amy", "ben", "cai", "dan", "eve", "fay"];
    let mut orgs: Vec<(String, String)> = Vec::new(); // (id, owner)
    let mut n = 0;

    for round in 0..4 {
        for _ in 0..25 {
            n += 1;
            let op = if orgs.is_empty() { 0 } else { dice.roll(6) };
            match op {
                0 => {
                    let owner = people[dice.roll(people.len())];
                    let org = app.create_org(owner, &format!("org-{n}")).await;
                    orgs.push((org.id, owner.to_owned()));
                }
                1 => {
                    let (id, owner) = orgs[dice.roll(orgs.len())].clone();
                    app.orgs(&owner)
                        .update_organization(pb::UpdateOrganizationRequest {
                            organization: Some(pb::Organization {
                                id,
                                name: format!("Renamed {n}"),
                                ..Default::default()
                            }),
                            update_mask: Some(FieldMask {
                                paths: vec!["name".into()],
                            }),
                        })
                        .await
                        .unwrap();
                }
                2 | 3 => {
                    let (id, owner) = orgs[dice.roll(orgs.len())].clone();
                    let user = people[dice.roll(people.len())];
                    let role = if dice.roll(2) == 0 {
                        pb::Role::Admin
                    } else {
                        pb::Role::Member
                    };
                    if app.role_of(&owner, &id, user).await.is_none() {
                        app.add_member(&owner, &id, user, role).await;
                    }
                }
                4 => {
                    let (id, owner) = orgs[dice.roll(orgs.len())].clone();
                    let user = people[dice.roll(people.len())];
                    if user != owner && app.role_of(&owner, &id, user).await.is_some() {
                        if dice.roll(2) == 0 {
                            app.members(&owner)
                                .remove_member(pb::RemoveMemberRequest {
                                    organization_id: id,
                                    user_id: user.into(),
                                })
                                .await
                                .unwrap();
                        } else {
                            app.members(&owner)
                                .update_member_role(pb::UpdateMemberRoleRequest {
                                    organization_id: id,
                                    user_id: user.into(),
                                    role: pb::Role::Admin.into(),
                                })
                                .await
                                .unwrap();
                        }
                    }
                }
                _ => {
                    let index = dice.roll(orgs.len());
                    let (id, owner) = orgs.remove(index);
                    app.orgs(&owner)
                        .delete_organization(pb::DeleteOrganizationRequest {
                            id,
                            etag: String::new(),
                        })
                        .await
                        .unwrap();
                }
            }
        }
        // The consumer reads part of what is there and is "killed"...
        consume(&mut app.event_follower(), &state, 15 + dice.roll(20)).await;
        // ...and every other round the server restarts too.
        if round % 2 == 1 {
            app.restart().await;
        }
    }
    // Finally the consumer resumes and catches up.
    while consume(&mut app.event_follower(), &state, usize::MAX).await > 0 {}

    let mirror = Mirror::load(&state).unwrap();
    assert!(!mirror.identities.is_empty());
    assert_eq!(mirror.identities, database_identities(&app).await);
}
