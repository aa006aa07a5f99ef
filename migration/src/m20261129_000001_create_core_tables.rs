//! Users, organizations, memberships and invitations.
//!
//! The rules the product states as invariants are constraints here, so that
//! no code path (nor a racing one) can break them:
//! - slugs are unique and stored lower case (`CHECK (slug = lower(slug))`),
//! - one membership per user and organization,
//! - one *pending* invitation per email and organization (a partial unique index),
//! - roles and invitation states are closed sets (`CHECK ... IN (...)`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    EmailLower,
    DisplayName,
    DisplayNameLower,
    ActiveOrganizationId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    DeveloperId,
    Name,
    Slug,
    LogoUrl,
    Version,
    CreatedBy,
    CreateRequestId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
    OrganizationId,
    UserId,
    Role,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    OrganizationId,
    Email,
    EmailLower,
    Role,
    State,
    InviterId,
    CreateRequestId,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

fn in_list(column: impl IntoIden, values: &[&str]) -> SimpleExpr {
    Expr::col(column).is_in(values.iter().copied())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(uuid(Organizations::Id).primary_key())
                    .col(uuid_uniq(Organizations::DeveloperId))
                    .col(string_len(Organizations::Name, 400))
                    .col(string_len_uniq(Organizations::Slug, 48))
                    .col(string_len(Organizations::LogoUrl, 2048))
                    .col(big_integer(Organizations::Version))
                    .col(string_len(Organizations::CreatedBy, 255))
                    .col(uuid_null(Organizations::CreateRequestId))
                    .col(timestamp_with_time_zone(Organizations::CreatedAt))
                    .col(timestamp_with_time_zone(Organizations::UpdatedAt))
                    .check(
                        Expr::col(Organizations::Slug)
                            .eq(Func::lower(Expr::col(Organizations::Slug))),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("organizations_create_request_key")
                    .table(Organizations::Table)
                    .col(Organizations::CreatedBy)
                    .col(Organizations::CreateRequestId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(string_len(Users::Id, 255).primary_key())
                    .col(string_len(Users::Email, 254))
                    .col(string_len(Users::EmailLower, 254))
                    .col(string_len(Users::DisplayName, 400))
                    .col(string_len(Users::DisplayNameLower, 400))
                    .col(uuid_null(Users::ActiveOrganizationId))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("users_active_organization_fkey")
                            .from(Users::Table, Users::ActiveOrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("users_email_lower_idx", Users::EmailLower),
            ("users_display_name_lower_idx", Users::DisplayNameLower),
            ("users_active_organization_idx", Users::ActiveOrganizationId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Users::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(uuid(Memberships::Id).primary_key())
                    .col(uuid(Memberships::OrganizationId))
                    .col(string_len(Memberships::UserId, 255))
                    .col(string_len(Memberships::Role, 16))
                    .col(timestamp_with_time_zone(Memberships::CreatedAt))
                    .col(timestamp_with_time_zone(Memberships::UpdatedAt))
                    .check(in_list(Memberships::Role, &["owner", "admin", "member"]))
                    .foreign_key(
                        ForeignKey::create()
                            .name("memberships_organization_fkey")
                            .from(Memberships::Table, Memberships::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("memberships_user_fkey")
                            .from(Memberships::Table, Memberships::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One membership per user and organization.
        manager
            .create_index(
                Index::create()
                    .name("memberships_organization_id_user_id_key")
                    .table(Memberships::Table)
                    .col(Memberships::OrganizationId)
                    .col(Memberships::UserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // ListOrganizations pages a user's memberships by id.
        manager
            .create_index(
                Index::create()
                    .name("memberships_user_id_idx")
                    .table(Memberships::Table)
                    .col(Memberships::UserId)
                    .col(Memberships::Id)
                    .to_owned(),
            )
            .await?;
        // ListMembers pages an organization's memberships by id, optionally of one role;
        // the last-owner check counts owners through the same index.
        manager
            .create_index(
                Index::create()
                    .name("memberships_organization_id_idx")
                    .table(Memberships::Table)
                    .col(Memberships::OrganizationId)
                    .col(Memberships::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("memberships_organization_role_id_idx")
                    .table(Memberships::Table)
                    .col(Memberships::OrganizationId)
                    .col(Memberships::Role)
                    .col(Memberships::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(uuid(Invitations::Id).primary_key())
                    .col(uuid(Invitations::OrganizationId))
                    .col(string_len(Invitations::Email, 254))
                    .col(string_len(Invitations::EmailLower, 254))
                    .col(string_len(Invitations::Role, 16))
                    .col(string_len(Invitations::State, 16))
                    .col(string_len(Invitations::InviterId, 255))
                    .col(uuid_null(Invitations::CreateRequestId))
                    .col(timestamp_with_time_zone(Invitations::ExpiresAt))
                    .col(timestamp_with_time_zone(Invitations::CreatedAt))
                    .col(timestamp_with_time_zone(Invitations::UpdatedAt))
                    .check(in_list(Invitations::Role, &["admin", "member"]))
                    .check(in_list(
                        Invitations::State,
                        &["pending", "accepted", "rejected", "cancelled", "expired"],
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("invitations_organization_fkey")
                            .from(Invitations::Table, Invitations::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("invitations_create_request_key")
                    .table(Invitations::Table)
                    .col(Invitations::OrganizationId)
                    .col(Invitations::InviterId)
                    .col(Invitations::CreateRequestId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "invitations_organization_id_idx",
                vec![Invitations::OrganizationId, Invitations::Id],
            ),
            (
                "invitations_organization_state_id_idx",
                vec![
                    Invitations::OrganizationId,
                    Invitations::State,
                    Invitations::Id,
                ],
            ),
            (
                "invitations_email_lower_id_idx",
                vec![Invitations::EmailLower, Invitations::Id],
            ),
            (
                "invitations_state_expires_at_idx",
                vec![Invitations::State, Invitations::ExpiresAt],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Invitations::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index).await?;
        }
        // At most one pending invitation per email and organization. sea-query
        // has no partial indexes; this statement is the same on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX invitations_pending_email_lower_key \
                 ON invitations (organization_id, email_lower) WHERE state = 'pending'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Invitations::Table.into_iden(),
            Memberships::Table.into_iden(),
            Users::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
