//! Bulk data for the benchmark, written straight into the database before
//! the server starts (through the RPCs, a million memberships would take
//! longer than the benchmark itself).

use chrono::Utc;
use sea_orm::{EntityTrait, Set, TransactionTrait};
use uuid::Uuid;

use roster::{
    domain::Error,
    store::{
        Store,
        entity::{memberships, organization_slugs, organizations, users},
    },
};

/// Rows per INSERT statement.
const CHUNK: usize = 500;

/// What was seeded, for the workloads to aim at.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Organization ids, index 0 being the big one.
    pub organizations: Vec<Uuid>,
    /// The owner of each organization, by index.
    pub owners: Vec<String>,
    /// Members per organization other than the big one.
    pub members_per_organization: usize,
    /// Every user id.
    pub users: Vec<String>,
    /// Members of organization 0.
    pub big_organization_members: usize,
}

impl Seeded {
    /// Members of the big organization.
    pub fn member_count_of_big(&self) -> usize {
        self.big_organization_members
    }

    /// The `j`-th member of organization `k` (0 is its owner).
    pub fn member(&self, k: usize, j: usize) -> &str {
        if k == 0 {
            &self.users[j % self.users.len()]
        } else {
            let users = self.users.len();
            &self.users[(k * self.members_per_organization + j) % users]
        }
    }
}

/// How much to seed.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Members of the big organization (ListMembers pages through it).
    pub big_organization_members: usize,
    /// Memberships in all, including the big organization's.
    pub total_memberships: usize,
    /// Members of every other organization.
    pub members_per_organization: usize,
}

/// The slug of the `k`th seeded organization.
pub fn slug_of(k: usize) -> String {
    format!("bench-{k}")
}

/// Writes users, organizations and memberships of the given shape.
pub async fn seed(store: &Store, shape: Shape) -> Result<Seeded, Error> {
    let now = Utc::now();
    let per_org = shape.members_per_organization.max(1);
    let rest = shape
        .total_memberships
        .saturating_sub(shape.big_organization_members);
    let other_orgs = rest / per_org;
    let user_count = shape
        .big_organization_members
        .max(rest / 10)
        .max(per_org)
        .max(1);
    let users: Vec<String> = (0..user_count).map(|i| format!("bench-user-{i}")).collect();
    for chunk in users.chunks(CHUNK) {
        let rows = chunk.iter().map(|id| users::ActiveModel {
            id: Set(id.clone()),
            email: Set(format!("{id}@bench.example.com")),
            email_lower: Set(format!("{id}@bench.example.com")),
            display_name: Set(id.clone()),
            display_name_lower: Set(id.clone()),
            active_organization_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        });
        users::Entity::insert_many(rows)
            .exec_without_returning(store.writer())
            .await?;
    }
    let mut seeded = Seeded {
        organizations: Vec::with_capacity(other_orgs + 1),
        owners: Vec::with_capacity(other_orgs + 1),
        members_per_organization: per_org,
        users,
        big_organization_members: shape.big_organization_members,
    };
    let org_count = other_orgs + 1;
    for k in 0..org_count {
        seeded.organizations.push(Uuid::now_v7());
        let owner = seeded.member(k, 0).to_owned();
        seeded.owners.push(owner);
    }
    for (chunk_index, chunk) in seeded.organizations.chunks(CHUNK).enumerate() {
        let rows = chunk.iter().enumerate().map(|(i, id)| {
            let k = chunk_index * CHUNK + i;
            organizations::ActiveModel {
                id: Set(*id),
                developer_id: Set(Uuid::now_v7().to_string()),
                name: Set(format!("Bench {k}")),
                slug: Set(slug_of(k)),
                logo_url: Set(String::new()),
                version: Set(1),
                created_by: Set(seeded.owners[k].clone()),
                create_request_id: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                identity_state: Set("local".to_owned()),
                identity_attempts: Set(0),
                identity_last_error: Set(String::new()),
                logo_image_format: Set(None),
                logo_image_sha256: Set(None),
                max_members: Set(None),
                max_pending_invitations: Set(None),
                suspended_at: Set(None),
                suspend_reason: Set(None),
                deleted_at: Set(None),
                purge_at: Set(None),
            }
        });
        organizations::Entity::insert_many(rows)
            .exec_without_returning(store.writer())
            .await?;
        // Each organization's slug claim, as `store::organization::insert`
        // writes it: checks by slug resolve through these.
        let claims = chunk.iter().enumerate().map(|(i, id)| {
            let k = chunk_index * CHUNK + i;
            organization_slugs::ActiveModel {
                slug: Set(slug_of(k)),
                organization_id: Set(*id),
                retained_until: Set(None),
                created_at: Set(now),
            }
        });
        organization_slugs::Entity::insert_many(claims)
            .exec_without_returning(store.writer())
            .await?;
    }
    let mut pending = Vec::with_capacity(CHUNK);
    let txn = store.writer().begin().await?;
    for (k, org) in seeded.organizations.iter().enumerate() {
        let size = if k == 0 {
            shape.big_organization_members
        } else {
            per_org
        };
        for j in 0..size {
            let role = if j == 0 { "owner" } else { "member" };
            pending.push(memberships::ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(*org),
                user_id: Set(seeded.member(k, j).to_owned()),
                role: Set(role.to_owned()),
                created_at: Set(now),
                updated_at: Set(now),
                source: Set(if j == 0 { "creator" } else { "invitation" }.to_owned()),
            });
            if pending.len() == CHUNK {
                memberships::Entity::insert_many(std::mem::take(&mut pending))
                    .exec_without_returning(&txn)
                    .await?;
            }
        }
    }
    if !pending.is_empty() {
        memberships::Entity::insert_many(pending)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(seeded)
}
