//! Platform administrators (issue 10, section 1): where each membership
//! came from, and an organization's own limits.
//!
//! - `memberships.source` says how a membership came about: `creator` (the
//!   user created the organization), `invitation`, `admin` (a platform
//!   administrator added them) or `import` (`roster import`). A closed set
//!   (`CHECK ... IN`); later sources (a verified domain, directory sync)
//!   are added by a later migration. Existing rows are filled in from what
//!   the database knows: in an imported organization (it has an
//!   `organization.imported` event), a member without a `member.added`
//!   event came with the import; elsewhere the organization's creator
//!   (`organizations.created_by`) made it; everyone else accepted an
//!   invitation, the only other way in before this migration.
//! - `organizations.max_members` and `organizations.max_pending_invitations`
//!   replace the server's defaults for one organization when set (NULL: the
//!   default), within the bounds `SetOrganizationLimits` enforces.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Source,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    MaxMembers,
    MaxPendingInvitations,
}

const SOURCES: [&str; 4] = ["creator", "invitation", "admin", "import"];
/// The largest limit an organization may be given.
const MAX_LIMIT: i64 = 1_000_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Memberships::Table)
                    .add_column(
                        string_len(Memberships::Source, 16)
                            .default("invitation")
                            .check(Expr::col(Memberships::Source).is_in(SOURCES)),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE memberships SET source = 'import' \
             WHERE EXISTS (SELECT 1 FROM events e \
                 WHERE e.organization_id = memberships.organization_id \
                 AND e.event_type = 'organization.imported') \
             AND NOT EXISTS (SELECT 1 FROM events e \
                 WHERE e.organization_id = memberships.organization_id \
                 AND e.event_type = 'member.added' \
                 AND e.subject_user_id = memberships.user_id)",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE memberships SET source = 'creator' \
             WHERE source = 'invitation' \
             AND user_id = (SELECT o.created_by FROM organizations o \
                 WHERE o.id = memberships.organization_id) \
             AND NOT EXISTS (SELECT 1 FROM events e \
                 WHERE e.organization_id = memberships.organization_id \
                 AND e.event_type = 'organization.imported')",
        )
        .await?;
        // SQLite adds one column per ALTER TABLE.
        for column in [
            integer_null(Organizations::MaxMembers)
                .check(Expr::cust(format!(
                    "max_members IS NULL OR max_members BETWEEN 1 AND {MAX_LIMIT}"
                )))
                .to_owned(),
            integer_null(Organizations::MaxPendingInvitations)
                .check(Expr::cust(format!(
                    "max_pending_invitations IS NULL \
                     OR max_pending_invitations BETWEEN 0 AND {MAX_LIMIT}"
                )))
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Organizations::MaxPendingInvitations,
            Organizations::MaxMembers,
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
                    .table(Memberships::Table)
                    .drop_column(Memberships::Source)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
