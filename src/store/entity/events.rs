use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    #[sea_orm(unique)]
    pub id: Uuid,
    pub txid: i64,
    pub event_type: String,
    pub organization_id: Uuid,
    pub developer_id: String,
    pub actor_id: String,
    pub subject_user_id: String,
    pub subject_email: String,
    pub data: String,
    pub created_at: DateTimeUtc,
    pub acting_party: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
