//! roster's schema, as an ordered, append-only list of migrations.
//!
//! Never edit a migration once it has landed on `main`: add a new one.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_create_core_tables;
mod m20261129_000002_create_events_and_mail_outbox;
mod m20261129_000003_notify_on_event_insert;
mod m20261201_000001_developer_identities;
mod m20261202_000001_old_slugs;
mod m20261202_000002_logos;
mod m20261203_000001_membership_source;
mod m20261203_000002_organization_lifecycle;
mod m20261203_000003_event_acting_party;
mod m20261203_000004_invitation_source_ids;

/// Applies roster's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_core_tables::Migration),
            Box::new(m20261129_000002_create_events_and_mail_outbox::Migration),
            Box::new(m20261129_000003_notify_on_event_insert::Migration),
            Box::new(m20261201_000001_developer_identities::Migration),
            Box::new(m20261202_000001_old_slugs::Migration),
            Box::new(m20261202_000002_logos::Migration),
            // The list's order is the order applied: these landed on main
            // in this order, whatever their names say.
            Box::new(m20261203_000004_invitation_source_ids::Migration),
            Box::new(m20261203_000003_event_acting_party::Migration),
            Box::new(m20261203_000001_membership_source::Migration),
            Box::new(m20261203_000002_organization_lifecycle::Migration),
        ]
    }
}
