//! Reading a Better Auth database: the organization plugin's tables
//! (`organization`, `member`, `invitation`) and the `user` and `session`
//! tables they refer to, under Better Auth's singular or plural names, on
//! SQLite or PostgreSQL. Columns are Better Auth's field names
//! (`organizationId`, ...), or their snake_case forms, which Better Auth
//! writes when a portal maps its fields that way.
//!
//! Nothing here judges the rows: [`super::plan`] does. Rows are read as
//! they are, each with its id, so every problem can name the row.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, QueryResult,
    Statement,
};

use super::ImportError;

/// The Better Auth tables roster reads, as named in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub user: String,
    pub session: Option<String>,
    pub organization: String,
    pub member: String,
    pub invitation: Option<String>,
}

/// A row of Better Auth's `user` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// A row of `organization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub logo: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// A row of `member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    /// As stored: one role, or several separated by commas.
    pub role: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// A row of `invitation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub role: String,
    /// `pending`, `accepted`, `rejected` or `canceled`, as Better Auth spells them.
    pub status: String,
    pub inviter_id: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
}

/// A row of `session`: only what roster carries over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: String,
    pub active_organization_id: Option<String>,
    /// When the session was last touched (or made): the newest wins.
    pub seen_at: Option<DateTime<Utc>>,
}

/// Everything read from the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub users: Vec<User>,
    pub organizations: Vec<Organization>,
    pub members: Vec<Member>,
    pub invitations: Vec<Invitation>,
    pub sessions: Vec<Session>,
}

/// An open Better Auth database.
pub struct Source {
    db: DatabaseConnection,
    pub tables: Tables,
}

impl Source {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and finds
    /// Better Auth's tables. An SQLite file is opened read-only: the import
    /// never writes to Better Auth.
    pub async fn connect(url: &str) -> Result<Self, ImportError> {
        let url = read_only(url)?;
        let mut options = ConnectOptions::new(url.clone());
        options
            .max_connections(1)
            .min_connections(0)
            .sqlx_logging(false);
        let db = Database::connect(options)
            .await
            .map_err(|err| ImportError::Source(format!("cannot connect: {err}")))?;
        let names = table_names(&db).await?;
        let tables = find_tables(&names)?;
        Ok(Self { db, tables })
    }

    /// Reads every row roster carries over.
    pub async fn read(&self) -> Result<Snapshot, ImportError> {
        let t = &self.tables;
        let users = self
            .rows(&t.user)
            .await?
            .iter()
            .map(|row| {
                Ok(User {
                    id: text(row, &t.user, &["id"])?,
                    email: text(row, &t.user, &["email"])?,
                    name: opt_text(row, &["name"]).unwrap_or_default(),
                    created_at: time(row, &["createdAt", "created_at"]),
                })
            })
            .collect::<Result<_, ImportError>>()?;
        let organizations = self
            .rows(&t.organization)
            .await?
            .iter()
            .map(|row| {
                let table = &t.organization;
                Ok(Organization {
                    id: text(row, table, &["id"])?,
                    name: opt_text(row, &["name"]).unwrap_or_default(),
                    slug: opt_text(row, &["slug"]).unwrap_or_default(),
                    logo: opt_text(row, &["logo"]).unwrap_or_default(),
                    created_at: time(row, &["createdAt", "created_at"]),
                })
            })
            .collect::<Result<_, ImportError>>()?;
        let members = self
            .rows(&t.member)
            .await?
            .iter()
            .map(|row| {
                let table = &t.member;
                Ok(Member {
                    id: text(row, table, &["id"])?,
                    organization_id: text(row, table, &["organizationId", "organization_id"])?,
                    user_id: text(row, table, &["userId", "user_id"])?,
                    role: opt_text(row, &["role"]).unwrap_or_default(),
                    created_at: time(row, &["createdAt", "created_at"]),
                })
            })
            .collect::<Result<_, ImportError>>()?;
        let invitations = match &t.invitation {
            None => Vec::new(),
            Some(table) => self
                .rows(table)
                .await?
                .iter()
                .map(|row| {
                    Ok(Invitation {
                        id: text(row, table, &["id"])?,
                        organization_id: text(row, table, &["organizationId", "organization_id"])?,
                        email: opt_text(row, &["email"]).unwrap_or_default(),
                        role: opt_text(row, &["role"]).unwrap_or_default(),
                        status: opt_text(row, &["status"]).unwrap_or_default(),
                        inviter_id: opt_text(row, &["inviterId", "inviter_id"]).unwrap_or_default(),
                        expires_at: time(row, &["expiresAt", "expires_at"]),
                        created_at: time(row, &["createdAt", "created_at"]),
                    })
                })
                .collect::<Result<_, ImportError>>()?,
        };
        let sessions = match &t.session {
            None => Vec::new(),
            Some(table) => self
                .rows(table)
                .await?
                .iter()
                .map(|row| {
                    Ok(Session {
                        user_id: text(row, table, &["userId", "user_id"])?,
                        active_organization_id: opt_text(
                            row,
                            &["activeOrganizationId", "active_organization_id"],
                        )
                        .filter(|id| !id.is_empty()),
                        seen_at: time(row, &["updatedAt", "updated_at"])
                            .or_else(|| time(row, &["createdAt", "created_at"])),
                    })
                })
                .collect::<Result<_, ImportError>>()?,
        };
        Ok(Snapshot {
            users,
            organizations,
            members,
            invitations,
            sessions,
        })
    }

    /// Every row of `table`, in a stable order.
    async fn rows(&self, table: &str) -> Result<Vec<QueryResult>, ImportError> {
        let sql = format!("SELECT * FROM {} ORDER BY id", quote(table));
        self.db
            .query_all_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .map_err(|err| ImportError::Source(format!("reading {table}: {err}")))
    }

    pub async fn close(self) {
        let _ = self.db.close().await;
    }
}

/// SQLite sources are opened read-only, so a mistyped path is an error
/// rather than a new, empty database.
fn read_only(url: &str) -> Result<String, ImportError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_owned());
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(ImportError::Usage(format!(
            "--from must be a sqlite:// or postgres:// URL, not {url:?}"
        )));
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(ImportError::Usage("--from names no SQLite file".to_owned()));
    }
    Ok(format!("sqlite://{path}?mode=ro"))
}

async fn table_names(db: &DatabaseConnection) -> Result<HashSet<String>, ImportError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = current_schema()"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .map_err(|err| ImportError::Source(format!("listing tables: {err}")))?;
    rows.iter()
        .map(|row| {
            row.try_get::<String>("", "name")
                .map_err(|err| ImportError::Source(format!("listing tables: {err}")))
        })
        .collect()
}

/// Picks each table under its singular or plural name; both at once is
/// ambiguous, and the three organization tables and `user` are required.
fn find_tables(names: &HashSet<String>) -> Result<Tables, ImportError> {
    let pick = |singular: &str, plural: &str| -> Result<Option<String>, ImportError> {
        match (names.contains(singular), names.contains(plural)) {
            (true, true) => Err(ImportError::Source(format!(
                "both {singular:?} and {plural:?} tables exist: which is Better Auth's is unclear"
            ))),
            (true, false) => Ok(Some(singular.to_owned())),
            (false, true) => Ok(Some(plural.to_owned())),
            (false, false) => Ok(None),
        }
    };
    let required = |singular: &str, plural: &str| -> Result<String, ImportError> {
        pick(singular, plural)?.ok_or_else(|| {
            ImportError::Source(format!(
                "no {singular:?} (or {plural:?}) table: not a Better Auth database with the organization plugin"
            ))
        })
    };
    Ok(Tables {
        user: required("user", "users")?,
        session: pick("session", "sessions")?,
        organization: required("organization", "organizations")?,
        member: required("member", "members")?,
        invitation: pick("invitation", "invitations")?,
    })
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A required text column (the first of `columns` present).
fn text(row: &QueryResult, table: &str, columns: &[&str]) -> Result<String, ImportError> {
    opt_text(row, columns).ok_or_else(|| {
        ImportError::Source(format!(
            "table {table}: a row without {} (or it is not text)",
            columns.join(" / ")
        ))
    })
}

/// A text column, if present and not NULL. UUIDs (ids on PostgreSQL when
/// Better Auth generates UUIDs) and numbers (serial ids) are read as their
/// text.
fn opt_text(row: &QueryResult, columns: &[&str]) -> Option<String> {
    columns.iter().find_map(|column| {
        if let Ok(value) = row.try_get::<Option<String>>("", column) {
            return value;
        }
        if let Ok(value) = row.try_get::<Option<uuid::Uuid>>("", column) {
            return value.map(|id| id.to_string());
        }
        row.try_get::<Option<i64>>("", column)
            .ok()
            .flatten()
            .map(|n| n.to_string())
    })
}

/// A time column: PostgreSQL `timestamptz` or `timestamp` (UTC), or on
/// SQLite text (ISO 8601, or `YYYY-MM-DD HH:MM:SS`) or a number of
/// milliseconds (or seconds) since the epoch.
fn time(row: &QueryResult, columns: &[&str]) -> Option<DateTime<Utc>> {
    columns.iter().find_map(|column| {
        if let Ok(Some(value)) = row.try_get::<Option<DateTime<Utc>>>("", column) {
            return Some(value);
        }
        if let Ok(Some(value)) = row.try_get::<Option<NaiveDateTime>>("", column) {
            return Some(Utc.from_utc_datetime(&value));
        }
        if let Ok(Some(value)) = row.try_get::<Option<i64>>("", column) {
            return from_epoch(value);
        }
        if let Ok(Some(value)) = row.try_get::<Option<String>>("", column) {
            return parse_time(&value);
        }
        None
    })
}

fn from_epoch(value: i64) -> Option<DateTime<Utc>> {
    // Milliseconds from 1970-04-27 on; anything smaller is seconds.
    if value.abs() >= 10_000_000_000 {
        DateTime::from_timestamp_millis(value)
    } else {
        DateTime::from_timestamp(value, 0)
    }
}

pub(crate) fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Some(time.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
        if let Ok(time) = DateTime::parse_from_str(value, format) {
            return Some(time.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(value, format) {
            return Some(Utc.from_utc_datetime(&time));
        }
    }
    value.parse::<i64>().ok().and_then(from_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_form_better_auth_writes() {
        let expected = Utc.with_ymd_and_hms(2026, 12, 1, 14, 3, 51).single();
        for value in [
            "2026-12-01T14:03:51.000Z",
            "2026-12-01T14:03:51Z",
            "2026-12-01 14:03:51",
            "2026-12-01 14:03:51+00",
            "2026-12-01 16:03:51+02:00",
            "1796133831000",
            "1796133831",
        ] {
            assert_eq!(parse_time(value), expected, "{value}");
        }
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn tables_singular_or_plural_but_not_both() {
        let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        let plural = find_tables(&set(&["users", "sessions", "organizations", "members"]));
        assert_eq!(
            plural.ok(),
            Some(Tables {
                user: "users".into(),
                session: Some("sessions".into()),
                organization: "organizations".into(),
                member: "members".into(),
                invitation: None,
            })
        );
        assert!(find_tables(&set(&["user", "users", "organization", "member"])).is_err());
        assert!(find_tables(&set(&["user", "session"])).is_err());
    }
}
