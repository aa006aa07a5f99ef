use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub developer_id: String,
    pub name: String,
    #[sea_orm(unique)]
    pub slug: String,
    pub logo_url: String,
    pub version: i64,
    pub created_by: String,
    pub create_request_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub identity_state: String,
    pub identity_attempts: i32,
    pub identity_last_error: String,
    pub logo_image_format: Option<String>,
    pub logo_image_sha256: Option<String>,
    pub max_members: Option<i32>,
    pub max_pending_invitations: Option<i32>,
    pub suspended_at: Option<DateTimeUtc>,
    pub suspend_reason: Option<String>,
    pub deleted_at: Option<DateTimeUtc>,
    pub purge_at: Option<DateTimeUtc>,
    #[sea_orm(has_many)]
    pub memberships: HasMany<super::memberships::Entity>,
    #[sea_orm(has_many)]
    pub invitations: HasMany<super::invitations::Entity>,
    #[sea_orm(has_one)]
    pub logo: HasOne<super::organization_logos::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
