//! Developer identities in the Provider Portal.
//!
//! - `organizations.developer_id` (and `events.developer_id`) become
//!   validated strings: the Provider Portal accepts any id matching
//!   `^[a-zA-Z0-9-_.]{1,256}$`, and organizations brought over from another
//!   system keep theirs. roster still mints UUIDv7 strings. Existing ids are
//!   rewritten in their canonical UUID text form. PostgreSQL enforces the
//!   rule with a CHECK; SQLite cannot add one to an existing table, so two
//!   triggers enforce it there.
//! - `organizations` gains the identity's visible state (`identity_state`,
//!   with the attempts and last error of a failing delivery). Organizations
//!   that existed before are `local`: their identity exists only in roster
//!   (`roster provider-portal reconcile --apply` creates them).
//! - `developer_identities` is the delivery outbox: one row per developer
//!   id, saying whether the identity should exist in the Provider Portal
//!   (`desired`) and what roster knows of it there (`confirmed`). It
//!   outlives the organization, so a delete is delivered after the
//!   organization row is gone, and it stays as a tombstone afterwards.
//! - `mail_outbox` gains `lease_token`, so a dispatcher whose lease on an
//!   email ran out can tell, and cannot mark another dispatcher's claim.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    IdentityState,
    IdentityAttempts,
    IdentityLastError,
}

#[derive(DeriveIden)]
enum DeveloperIdentities {
    Table,
    DeveloperId,
    OrganizationId,
    Desired,
    Confirmed,
    PortalStatus,
    Attempts,
    LastError,
    LastStatus,
    NextAttemptAt,
    LeaseToken,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    LeaseToken,
}

/// The states an organization's identity can be in, as stored.
const IDENTITY_STATES: [&str; 6] = [
    "local",
    "provisioning",
    "active",
    "pending_approval",
    "deprovisioning",
    "failing",
];

fn in_list(column: impl IntoIden, values: &[&str]) -> SimpleExpr {
    Expr::col(column).is_in(values.iter().copied())
}

/// SQL that turns a 16-byte UUID blob in `column` into its canonical text.
fn uuid_blob_to_text(column: &str) -> String {
    let hex = format!("lower(hex({column}))");
    format!(
        "substr({hex}, 1, 8) || '-' || substr({hex}, 9, 4) || '-' || substr({hex}, 13, 4) \
         || '-' || substr({hex}, 17, 4) || '-' || substr({hex}, 21, 12)"
    )
}

/// The SQLite condition under which `NEW.developer_id` breaks the rule.
const SQLITE_BAD_DEVELOPER_ID: &str = "typeof(NEW.developer_id) <> 'text' \
     OR length(NEW.developer_id) NOT BETWEEN 1 AND 256 \
     OR NEW.developer_id GLOB '*[^A-Za-z0-9._-]*'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                for table in ["organizations", "events"] {
                    db.execute_unprepared(&format!(
                        "ALTER TABLE {table} ALTER COLUMN developer_id TYPE varchar(256) \
                         USING developer_id::text"
                    ))
                    .await?;
                }
                // varchar(256) bounds the length (PostgreSQL's regular
                // expressions repeat at most 255 times).
                db.execute_unprepared(
                    "ALTER TABLE organizations ADD CONSTRAINT organizations_developer_id_check \
                     CHECK (developer_id ~ '^[A-Za-z0-9._-]+$')",
                )
                .await?;
            }
            _ => {
                for table in ["organizations", "events"] {
                    db.execute_unprepared(&format!(
                        "UPDATE {table} SET developer_id = {} WHERE typeof(developer_id) = 'blob'",
                        uuid_blob_to_text("developer_id")
                    ))
                    .await?;
                }
                for (name, when) in [
                    ("organizations_developer_id_insert", "BEFORE INSERT"),
                    (
                        "organizations_developer_id_update",
                        "BEFORE UPDATE OF developer_id",
                    ),
                ] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {name} {when} ON organizations \
                         WHEN {SQLITE_BAD_DEVELOPER_ID} \
                         BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: developer_id'); END"
                    ))
                    .await?;
                }
            }
        }

        // SQLite adds one column per ALTER TABLE.
        for column in [
            string_len(Organizations::IdentityState, 32)
                .default("local")
                .check(in_list(Organizations::IdentityState, &IDENTITY_STATES))
                .to_owned(),
            integer(Organizations::IdentityAttempts)
                .default(0)
                .check(Expr::col(Organizations::IdentityAttempts).gte(0))
                .to_owned(),
            string_len(Organizations::IdentityLastError, 1024)
                .default("")
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Organizations::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(DeveloperIdentities::Table)
                    .col(string_len(DeveloperIdentities::DeveloperId, 256).primary_key())
                    .col(uuid(DeveloperIdentities::OrganizationId))
                    .col(string_len(DeveloperIdentities::Desired, 16))
                    .col(string_len(DeveloperIdentities::Confirmed, 16))
                    .col(string_len(DeveloperIdentities::PortalStatus, 16))
                    .col(integer(DeveloperIdentities::Attempts))
                    .col(string_len(DeveloperIdentities::LastError, 1024))
                    .col(integer(DeveloperIdentities::LastStatus))
                    .col(timestamp_with_time_zone(DeveloperIdentities::NextAttemptAt))
                    .col(uuid_null(DeveloperIdentities::LeaseToken))
                    .col(timestamp_with_time_zone(DeveloperIdentities::CreatedAt))
                    .col(timestamp_with_time_zone(DeveloperIdentities::UpdatedAt))
                    .check(in_list(
                        DeveloperIdentities::Desired,
                        &["present", "absent"],
                    ))
                    .check(in_list(
                        DeveloperIdentities::Confirmed,
                        &["present", "absent", "unknown"],
                    ))
                    .check(in_list(
                        DeveloperIdentities::PortalStatus,
                        &["", "pending", "active"],
                    ))
                    .check(Expr::col(DeveloperIdentities::Attempts).gte(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("developer_identities_due")
                    .table(DeveloperIdentities::Table)
                    .col(DeveloperIdentities::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("developer_identities_organization")
                    .table(DeveloperIdentities::Table)
                    .col(DeveloperIdentities::OrganizationId)
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(MailOutbox::Table)
                    .add_column(uuid_null(MailOutbox::LeaseToken))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The identity outbox and states go; developer ids stay strings
        // (ids that are not UUIDs could not go back).
        manager
            .drop_table(Table::drop().table(DeveloperIdentities::Table).to_owned())
            .await?;
        for column in [
            Organizations::IdentityState,
            Organizations::IdentityAttempts,
            Organizations::IdentityLastError,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Organizations::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(MailOutbox::Table)
                    .drop_column(MailOutbox::LeaseToken)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
