//! `roster import better-auth`: brings a portal's organizations, members,
//! invitations and active organizations over from Better Auth's
//! organization plugin.
//!
//! [`better_auth`] reads the source as it is, [`plan`] judges it by
//! roster's rules and decides what to write, and [`plan_and_apply`] plans
//! again and writes in one transaction, so a failure leaves nothing
//! half-imported. Ids are
//! derived from Better Auth's, so a second run finds everything imported
//! already and writes nothing.

pub mod better_auth;
pub mod plan;

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};

use crate::{
    domain::{
        Error,
        event::NewEvent,
        model::{InvitationDelivery, InvitationState},
    },
    store::{self, Store},
};

use better_auth::Snapshot;
pub use plan::{Existing, Options, Plan, Resolution};

/// Why an import could not run (as opposed to problems in the data, which
/// the plan reports).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Usage(String),
    #[error("Better Auth database: {0}")]
    Source(String),
    #[error("roster's database")]
    Target(#[from] Error),
}

/// What roster holds that the plan must respect, read on `conn`.
async fn existing(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Existing, ImportError> {
    Ok(Existing {
        organizations: store::import::organizations(conn).await?,
        retained_slugs: store::import::retained_slugs(conn, now).await?,
    })
}

/// Arbitrary but fixed key of the PostgreSQL advisory lock that makes
/// imports into one database take turns ("import" in ASCII).
const IMPORT_LOCK_KEY: i64 = 0x696d_706f_7274;

/// The plan for `snapshot` against roster as it is now (a dry run).
pub async fn plan_only(
    store: &Store,
    snapshot: &Snapshot,
    options: &Options,
    now: DateTime<Utc>,
) -> Result<Plan, ImportError> {
    let existing = existing(store.db(), now).await?;
    Ok(plan::plan(snapshot, &existing, options, now))
}

/// Plans and, unless the plan is refused or empty, writes it, all in one
/// write transaction: another import of the same data waits for this one
/// (SQLite's write lock; an advisory lock on PostgreSQL) and then finds it
/// done, and a failure leaves nothing. Returns the plan and what was written.
pub async fn plan_and_apply(
    store: &Store,
    snapshot: &Snapshot,
    options: &Options,
    now: DateTime<Utc>,
) -> Result<(Plan, Option<Applied>), ImportError> {
    let txn = store.begin_write().await?;
    if store.backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [IMPORT_LOCK_KEY.into()],
        ))
        .await
        .map_err(Error::from)?;
    }
    let plan = plan::plan(snapshot, &existing(&txn, now).await?, options, now);
    if plan.is_refused() || plan.is_empty() {
        txn.rollback().await.map_err(Error::from)?;
        return Ok((plan, None));
    }
    let applied = write(&txn, &plan).await?;
    txn.commit().await.map_err(Error::from)?;
    Ok((plan, Some(applied)))
}

/// What [`plan_and_apply`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub organizations: usize,
    pub members: usize,
    pub invitations: usize,
    /// Profiles written (people roster did not know yet).
    pub users: usize,
    pub active_organizations: usize,
}

/// Writes `plan` in the caller's transaction. Each organization gets one
/// `organization.imported` event, by
/// [`crate::domain::event::BETTER_AUTH_IMPORT_ACTOR`].
async fn write(txn: &DatabaseTransaction, plan: &Plan) -> Result<Applied, ImportError> {
    let mut applied = Applied::default();
    for user in &plan.users {
        if store::import::insert_user_if_missing(
            txn,
            &user.id,
            &user.email,
            &user.name,
            user.created_at,
        )
        .await?
        {
            applied.users += 1;
        }
    }
    for planned in &plan.organizations {
        let organization = &planned.organization;
        // Active already, and no outbox row: the identity exists in the
        // Provider Portal under this developer id.
        store::organization::insert(
            txn,
            organization,
            planned.logo_image.as_ref(),
            &planned.created_by,
            None,
        )
        .await?;
        for member in &planned.members {
            store::import::insert_membership(
                txn,
                member.id,
                organization.id,
                &member.user,
                member.role,
                member.joined_at,
            )
            .await?;
        }
        for invitation in &planned.invitations {
            store::invitation::insert(
                txn,
                store::invitation::InvitationRow {
                    id: invitation.id,
                    organization: organization.id,
                    email: &invitation.email,
                    role: invitation.role,
                    state: invitation.state,
                    inviter: &invitation.inviter,
                    request_id: None,
                    expires_at: invitation.expires_at,
                    // Better Auth emailed its invitations itself.
                    delivery: InvitationDelivery::Email,
                    created_at: invitation.created_at,
                    source_id: invitation.former_id.as_deref(),
                },
            )
            .await?;
        }
        let pending = planned
            .invitations
            .iter()
            .filter(|i| i.state == InvitationState::Pending)
            .count();
        store::event::record(
            txn,
            NewEvent::organization_imported(organization, planned.members.len(), pending),
        )
        .await?;
        applied.organizations += 1;
        applied.members += planned.members.len();
        applied.invitations += planned.invitations.len();
    }
    for (user, organization) in &plan.active {
        if store::import::set_active_if_unset(txn, user, *organization).await? {
            applied.active_organizations += 1;
        }
    }
    Ok(applied)
}

/// The plan as a person reads it: what would be written, then every
/// finding with its row and what becomes of it.
pub fn describe(plan: &Plan, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "organizations to import: {}; already imported (left as they are): {}",
        plan.organizations.len(),
        plan.already_imported.len()
    );
    for o in &plan.organizations {
        let org = &o.organization;
        let _ = writeln!(
            out,
            "  {}  {:?}  developer id {}  -> organization {}  created {}",
            org.slug,
            org.name,
            org.developer_id,
            org.id,
            org.created_at.to_rfc3339()
        );
        for m in &o.members {
            let _ = writeln!(
                out,
                "    member {}  {}  joined {}",
                m.user,
                m.role.as_str(),
                m.joined_at.to_rfc3339()
            );
        }
        for i in &o.invitations {
            let state = match i.state {
                InvitationState::Pending if i.expires_at <= now => "expired",
                state => state.as_str(),
            };
            let _ = writeln!(
                out,
                "    invitation {} -> {}  {}  {}  {}  by {}  expires {}",
                i.source_id,
                i.id,
                i.email,
                i.role.as_str(),
                state,
                i.inviter,
                i.expires_at.to_rfc3339()
            );
        }
    }
    for (id, slug) in &plan.already_imported {
        let _ = writeln!(out, "  already imported: {slug}  (Better Auth id {id})");
    }
    let _ = writeln!(
        out,
        "people in these memberships: {} (a profile is written for each roster has not seen yet); \
         active organizations to carry over: {}",
        plan.users.len(),
        plan.active.len()
    );
    let count = |r: Resolution| plan.findings.iter().filter(|f| f.resolution == r).count();
    let problems = plan.findings.len() - count(Resolution::Note);
    let _ = writeln!(
        out,
        "problems: {problems} ({} refusing, {} skipped by --skip-invalid, {} resolved by --promote-oldest-admin); notes: {}",
        count(Resolution::Refused),
        count(Resolution::Skipped),
        count(Resolution::Promoted),
        count(Resolution::Note),
    );
    for f in &plan.findings {
        let label = match f.resolution {
            Resolution::Refused => "problem",
            Resolution::Skipped => "skipped",
            Resolution::Promoted => "promoted",
            Resolution::Note => "note",
        };
        let _ = writeln!(
            out,
            "  {label} [{}] {} {}: {}",
            f.kind.as_str(),
            f.table,
            f.row,
            f.message
        );
    }
    out
}
