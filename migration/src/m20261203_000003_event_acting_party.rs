//! `events.acting_party`: who acted for the event's actor, when someone
//! did: the `sub` of the token's RFC 8693 `act` claim (an administrator or
//! a support tool acting for a person, say). NULL when nobody acted for
//! the actor, and for every event recorded before this migration.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    ActingParty,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // As wide as a user id: the acting party is a token subject too.
        // Absent is NULL, never an empty string.
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(
                        string_len_null(Events::ActingParty, 255)
                            .check(Expr::col(Events::ActingParty).ne(""))
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::ActingParty)
                    .to_owned(),
            )
            .await
    }
}
