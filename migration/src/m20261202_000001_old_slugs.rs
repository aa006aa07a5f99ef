//! Old slugs: a renamed organization's previous slug keeps resolving to it
//! for a while (`--old-slug-ttl`), and no other organization may take it
//! meanwhile.
//!
//! `organization_slugs` holds every slug that is claimed: each
//! organization's current slug (`retained_until` NULL) and the old slugs it
//! still retains (`retained_until` set). Its primary key is the slug, so a
//! current slug and a retained old slug collide in the database itself: two
//! racing renames or creates to the same slug cannot both commit, on SQLite
//! or PostgreSQL, whatever the application checked before. A partial unique
//! index keeps one current slug per organization. Rows go with their
//! organization (`ON DELETE CASCADE`): deleting an organization frees its
//! slugs, the current one and the old ones alike.
//!
//! Existing organizations get their current slug's row here.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OrganizationSlugs {
    Table,
    Slug,
    OrganizationId,
    RetainedUntil,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OrganizationSlugs::Table)
                    .col(string_len(OrganizationSlugs::Slug, 48).primary_key())
                    .col(uuid(OrganizationSlugs::OrganizationId))
                    .col(timestamp_with_time_zone_null(
                        OrganizationSlugs::RetainedUntil,
                    ))
                    .col(timestamp_with_time_zone(OrganizationSlugs::CreatedAt))
                    .check(
                        Expr::col(OrganizationSlugs::Slug)
                            .eq(Func::lower(Expr::col(OrganizationSlugs::Slug))),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("organization_slugs_organization_id_fkey")
                            .from(OrganizationSlugs::Table, OrganizationSlugs::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Partial indexes: the same statement on SQLite and PostgreSQL.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX organization_slugs_current_key \
             ON organization_slugs (organization_id) WHERE retained_until IS NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX organization_slugs_retained_until_idx \
             ON organization_slugs (retained_until) WHERE retained_until IS NOT NULL",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO organization_slugs (slug, organization_id, retained_until, created_at) \
             SELECT slug, id, NULL, created_at FROM organizations",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OrganizationSlugs::Table).to_owned())
            .await
    }
}
