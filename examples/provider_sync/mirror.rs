//! The Provider Portal's local copy of roster's developer identities, built
//! only from the event stream, with the cursor it has applied up to.
//!
//! Shared by the example binary (`main.rs`) and roster's tests, which check
//! that after a random workload with restarts this mirror equals roster's
//! database.

use std::{collections::BTreeMap, io, path::Path};

use roster::pb;
use serde::{Deserialize, Serialize};

/// One developer identity (an organization, as the Provider Portal sees it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Identity {
    pub developer_id: String,
    pub name: String,
    pub slug: String,
    /// user id → role name (`owner`, `admin`, `member`).
    pub members: BTreeMap<String, String>,
}

/// Every identity by organization id, and where in the log it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Mirror {
    /// The last applied event's cursor; empty before the first.
    pub cursor: String,
    pub identities: BTreeMap<String, Identity>,
    /// Deleted organizations' identities, kept until they are purged: a
    /// restore brings one back as it was.
    #[serde(default)]
    pub deleted: BTreeMap<String, Identity>,
}

fn new_value<'a>(event: &'a pb::Event, field: &str) -> Option<&'a str> {
    event
        .changes
        .iter()
        .find(|change| change.field == field)
        .map(|change| change.new_value.as_str())
}

impl Mirror {
    /// Applies one event. Events about invitations change no identity.
    pub fn apply(&mut self, event: &pb::Event) {
        let org = event.organization_id.clone();
        match event.r#type.as_str() {
            "organization.created" => {
                self.identities.insert(
                    org,
                    Identity {
                        developer_id: event.developer_id.clone(),
                        name: new_value(event, "name").unwrap_or_default().to_owned(),
                        slug: new_value(event, "slug").unwrap_or_default().to_owned(),
                        members: BTreeMap::new(),
                    },
                );
            }
            "organization.updated" => {
                if let (Some(identity), Some(name)) =
                    (self.identities.get_mut(&org), new_value(event, "name"))
                {
                    identity.name = name.to_owned();
                }
            }
            "organization.deleted" => {
                if let Some(identity) = self.identities.remove(&org) {
                    self.deleted.insert(org, identity);
                }
            }
            "organization.restored" => {
                if let Some(identity) = self.deleted.remove(&org) {
                    self.identities.insert(org, identity);
                }
            }
            "organization.purged" => {
                self.deleted.remove(&org);
            }
            "member.added" | "member.role_changed" => {
                if let (Some(identity), Some(role)) =
                    (self.identities.get_mut(&org), new_value(event, "role"))
                {
                    identity
                        .members
                        .insert(event.subject_user_id.clone(), role.to_owned());
                }
            }
            "member.removed" => {
                if let Some(identity) = self.identities.get_mut(&org) {
                    identity.members.remove(&event.subject_user_id);
                }
            }
            _ => {}
        }
        self.cursor = event.cursor.clone();
    }

    /// Reads the mirror saved at `path`, or an empty one if there is none.
    pub fn load(path: &Path) -> io::Result<Mirror> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Mirror::default()),
            Err(err) => Err(err),
        }
    }

    /// Saves atomically (write a temporary file, then rename), so a crash
    /// leaves either the old state or the new one, never half of one.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let temporary = path.with_extension("tmp");
        std::fs::write(
            &temporary,
            serde_json::to_vec_pretty(self).map_err(io::Error::other)?,
        )?;
        std::fs::rename(temporary, path)
    }
}
