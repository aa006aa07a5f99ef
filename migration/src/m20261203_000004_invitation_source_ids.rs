//! Imported invitations keep the id they had where they came from.
//!
//! An invitation imported from Better Auth was emailed with a link that
//! names Better Auth's id, which is usually not a UUID and so cannot be
//! roster's id. `source_id` keeps it, unique across the table, so the link
//! in that email still names the invitation after the switch. Invitations
//! made in roster have none.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Invitations {
    Table,
    SourceId,
}

/// The widest id the Provider Portal (and so a Better Auth id roster
/// imports) may have.
const SOURCE_ID_MAX: u32 = 256;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .add_column(string_len_null(Invitations::SourceId, SOURCE_ID_MAX))
                    .to_owned(),
            )
            .await?;
        // Partial, so the many rows without one do not collide; the same
        // statement on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX invitations_source_id_key \
                 ON invitations (source_id) WHERE source_id IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX invitations_source_id_key")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .drop_column(Invitations::SourceId)
                    .to_owned(),
            )
            .await
    }
}
