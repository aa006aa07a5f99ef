//! The change log (`events`) and the email outbox (`mail_outbox`).
//!
//! Both are written in the same transaction as the change they record, so
//! an event or an email exists if and only if its change committed.
//!
//! `events.txid` orders events by the transaction that wrote them. On
//! PostgreSQL it defaults to the writing transaction's id, and readers only
//! hand out events of transactions older than every transaction still
//! running (`pg_snapshot_xmin`), so a transaction that commits late can
//! never slip in behind a cursor that has already moved past it. SQLite
//! runs one writer at a time, so there `txid` stays 0 and `seq` alone is
//! commit order.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Seq,
    Id,
    Txid,
    EventType,
    OrganizationId,
    DeveloperId,
    ActorId,
    SubjectUserId,
    SubjectEmail,
    Data,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    EventId,
    InvitationId,
    Recipient,
    Subject,
    Body,
    MessageId,
    State,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
    SentAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_pk_auto(Events::Seq))
                    .col(uuid_uniq(Events::Id))
                    .col(big_integer(Events::Txid).default(0))
                    .col(string_len(Events::EventType, 64))
                    .col(uuid(Events::OrganizationId))
                    .col(uuid(Events::DeveloperId))
                    .col(string_len(Events::ActorId, 255))
                    .col(string_len(Events::SubjectUserId, 255))
                    .col(string_len(Events::SubjectEmail, 254))
                    .col(text(Events::Data))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE events ALTER COLUMN txid \
                     SET DEFAULT (pg_current_xact_id()::text::bigint)",
                )
                .await?;
        }
        // The stream reads in (txid, seq) order; the audit log per organization by id.
        manager
            .create_index(
                Index::create()
                    .name("events_txid_seq_idx")
                    .table(Events::Table)
                    .col(Events::Txid)
                    .col(Events::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_organization_id_idx")
                    .table(Events::Table)
                    .col(Events::OrganizationId)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MailOutbox::Table)
                    .col(uuid(MailOutbox::Id).primary_key())
                    .col(uuid(MailOutbox::EventId))
                    .col(uuid(MailOutbox::InvitationId))
                    .col(string_len(MailOutbox::Recipient, 254))
                    .col(text(MailOutbox::Subject))
                    .col(text(MailOutbox::Body))
                    .col(string_len_uniq(MailOutbox::MessageId, 255))
                    .col(string_len(MailOutbox::State, 16))
                    .col(integer(MailOutbox::Attempts).default(0))
                    .col(timestamp_with_time_zone(MailOutbox::NextAttemptAt))
                    .col(text(MailOutbox::LastError).default(""))
                    .col(timestamp_with_time_zone(MailOutbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(MailOutbox::SentAt))
                    .check(Expr::col(MailOutbox::State).is_in(["pending", "sent", "failed"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mail_outbox_state_next_attempt_idx")
                    .table(MailOutbox::Table)
                    .col(MailOutbox::State)
                    .col(MailOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MailOutbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}
