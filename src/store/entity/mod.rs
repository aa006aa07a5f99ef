//! SeaORM entities, one per table. The schema itself is defined by the
//! migrations in `migration/`; these describe it to the query builder.

pub mod developer_identities;
pub mod events;
pub mod invitations;
pub mod mail_outbox;
pub mod memberships;
pub mod organization_logos;
pub mod organization_slugs;
pub mod organizations;
pub mod users;
