//! The organization lifecycle (issue 10, section 2): suspension by
//! platform administrators, and soft deletion with a retention period.
//!
//! `organizations` gains
//! - `suspended_at` and `suspend_reason`: set while an administrator has
//!   the organization suspended (a reason only with a time);
//! - `deleted_at` and `purge_at`: set together when the organization is
//!   deleted; the row (with its memberships, invitations and slugs) stays
//!   until `purge_at`, so its owner or an administrator may restore it, and
//!   a background sweep removes it for good after that.
//!
//! A deleted organization may also be suspended (an administrator deleted
//! a suspended one): restoring it brings the suspension back. The state a
//! client sees is derived from the columns (deleted, else suspended, else
//! active), so no column can contradict another.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    SuspendedAt,
    SuspendReason,
    DeletedAt,
    PurgeAt,
}

/// The longest suspension reason roster stores (characters).
const MAX_SUSPEND_REASON: u32 = 500;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE; each CHECK names only
        // columns that exist by then.
        for column in [
            timestamp_with_time_zone_null(Organizations::SuspendedAt).to_owned(),
            string_len_null(Organizations::SuspendReason, MAX_SUSPEND_REASON)
                .check(Expr::cust(
                    "suspend_reason IS NULL OR suspended_at IS NOT NULL",
                ))
                .to_owned(),
            timestamp_with_time_zone_null(Organizations::DeletedAt).to_owned(),
            // Deleted and purge times come together, the purge after the delete.
            timestamp_with_time_zone_null(Organizations::PurgeAt)
                .check(Expr::cust(
                    "(purge_at IS NULL) = (deleted_at IS NULL) \
                     AND (purge_at IS NULL OR purge_at >= deleted_at)",
                ))
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
        // The purge sweep's question, "which deleted organizations are due?",
        // without reading the live ones. Partial: the same statement on
        // SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX organizations_purge_at_idx ON organizations (purge_at) \
                 WHERE purge_at IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX organizations_purge_at_idx")
            .await?;
        for column in [
            Organizations::PurgeAt,
            Organizations::DeletedAt,
            Organizations::SuspendReason,
            Organizations::SuspendedAt,
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
        Ok(())
    }
}
