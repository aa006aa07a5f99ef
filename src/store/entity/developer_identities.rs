use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "developer_identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub developer_id: String,
    pub organization_id: Uuid,
    pub desired: String,
    pub confirmed: String,
    pub portal_status: String,
    pub attempts: i32,
    pub last_error: String,
    pub last_status: i32,
    pub next_attempt_at: DateTimeUtc,
    pub lease_token: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
