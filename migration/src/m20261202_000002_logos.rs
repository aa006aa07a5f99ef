//! Logos as the portal stores them, and invitations that are not emailed
//! (issue 8, section 3).
//!
//! - An uploaded logo image (up to 256 KiB) lives in `organization_logos`,
//!   one row per organization, deleted with it. `organizations` keeps only
//!   what lists and the read cache need: the image's format and SHA-256
//!   (`logo_image_format`, `logo_image_sha256`), never its bytes.
//!   `organizations.logo_url` stays an https URL of at most 2048 characters
//!   (empty for no logo or an image); a data URL would not fit there.
//! - `invitations.delivery` records how an invitation reaches its recipient:
//!   `email` (as before; existing invitations) or `link_only` (the portal
//!   delivers the link itself; roster sends nothing).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    LogoImageFormat,
    LogoImageSha256,
}

#[derive(DeriveIden)]
enum OrganizationLogos {
    Table,
    OrganizationId,
    Image,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Delivery,
}

const IMAGE_FORMATS: [&str; 4] = ["png", "jpeg", "webp", "gif"];
/// 256 KiB: the largest logo image roster stores.
const MAX_IMAGE_BYTES: i64 = 256 * 1024;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            string_len_null(Organizations::LogoImageFormat, 8)
                .check(Expr::col(Organizations::LogoImageFormat).is_in(IMAGE_FORMATS))
                .to_owned(),
            // Both image columns are set or neither, and an image excludes a URL.
            string_len_null(Organizations::LogoImageSha256, 64)
                .check(Expr::cust(
                    "(logo_image_sha256 IS NULL) = (logo_image_format IS NULL) \
                     AND (logo_image_format IS NULL OR logo_url = '')",
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
        manager
            .create_table(
                Table::create()
                    .table(OrganizationLogos::Table)
                    .col(uuid(OrganizationLogos::OrganizationId).primary_key())
                    .col(blob(OrganizationLogos::Image))
                    .check(Expr::cust(format!(
                        "length(image) BETWEEN 1 AND {MAX_IMAGE_BYTES}"
                    )))
                    .foreign_key(
                        ForeignKey::create()
                            .name("organization_logos_organization_fkey")
                            .from(OrganizationLogos::Table, OrganizationLogos::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .add_column(
                        string_len(Invitations::Delivery, 16)
                            .default("email")
                            .check(Expr::col(Invitations::Delivery).is_in(["email", "link_only"])),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .drop_column(Invitations::Delivery)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(OrganizationLogos::Table).to_owned())
            .await?;
        for column in [
            Organizations::LogoImageSha256,
            Organizations::LogoImageFormat,
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
