//! Scratch databases, one per test: a temporary SQLite file, or a fresh
//! PostgreSQL database on the `TEST_DATABASE_URL` server.
//!
//! A PostgreSQL database is cloned (`CREATE DATABASE ... TEMPLATE`) from a
//! template that has every migration applied, made once and shared by every
//! test process on the server: the template's name carries a digest of
//! `migration/src`, so a changed migration gets a template of its own. It is
//! made under an advisory lock, built under a temporary name and renamed
//! when complete, so processes starting at once neither race nor see half a
//! template, and it does not accept connections (a connection to a template
//! would make every clone wait and fail).
//!
//! The first process to need PostgreSQL also sweeps what runs that were
//! killed left behind: test databases more than a day old (their names
//! carry a UUIDv7, so its time) and other digests' templates older than a
//! day (their comment says when they were made).

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    path::Path,
    time::Duration,
};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use tokio::sync::OnceCell;

use crate::helpers::Backend;

/// Test databases are named `roster_test_<UUIDv7>`.
const TEST_PREFIX: &str = "roster_test_";
/// Templates are named `roster_template_<digest of migration/src>`.
const TEMPLATE_PREFIX: &str = "roster_template_";
/// The advisory lock that serializes template making and sweeping across
/// processes ("roster-t" in ASCII).
const TEMPLATE_LOCK: i64 = 0x726f_7374_6572_2d74;
/// What the sweep considers abandoned.
const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Where the test's database lives, and how to get rid of it.
pub enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
    /// Another app's database: that app cleans up.
    Shared,
}

impl TestDb {
    /// A database of the test's own: a temporary SQLite file, or a fresh
    /// PostgreSQL database on the `TEST_DATABASE_URL` server, already
    /// migrated, dropped with the returned value. Returns its URL too.
    pub async fn create(backend: &Backend) -> (String, TestDb) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("roster.db").display()
                );
                (url, TestDb::Sqlite(dir))
            }
            Backend::Postgres(base) => {
                let template = template(base).await;
                let name = format!("{TEST_PREFIX}{}", uuid::Uuid::now_v7().simple());
                let admin = admin(base).await;
                execute(
                    &admin,
                    &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
                )
                .await;
                admin.close().await.expect("close admin connection");
                (
                    database_url(base, &name),
                    TestDb::Postgres {
                        admin_url: base.clone(),
                        name,
                    },
                )
            }
        }
    }
}

impl TestDb {
    /// An empty PostgreSQL database of the test's own on the
    /// `TEST_DATABASE_URL` server (no roster schema: for another system's
    /// tables), dropped with the returned value; and its URL.
    pub async fn create_empty_postgres(base: &str) -> (String, TestDb) {
        let name = format!("{TEST_PREFIX}{}", uuid::Uuid::now_v7().simple());
        let admin = admin(base).await;
        execute(&admin, &format!("CREATE DATABASE \"{name}\"")).await;
        admin.close().await.expect("close admin connection");
        (
            database_url(base, &name),
            TestDb::Postgres {
                admin_url: base.to_owned(),
                name,
            },
        )
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; do the async clean-up on
            // a thread of its own.
            let _ = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async move {
                    if let Ok(db) = Database::connect(&admin_url).await {
                        let _ = db
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                        let _ = db.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// `base` (the `TEST_DATABASE_URL`) pointing at database `name` instead.
fn database_url(base: &str, name: &str) -> String {
    let mut url = url::Url::parse(base).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// One connection to the `TEST_DATABASE_URL` database: session-level
/// advisory locks need every statement on the same connection.
async fn admin(base: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(base);
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .expect("connect to TEST_DATABASE_URL")
}

async fn execute(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

async fn names(db: &DatabaseConnection, sql: &str) -> Vec<(String, String)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
    .iter()
    .map(|row| {
        (
            row.try_get("", "datname").expect("datname"),
            row.try_get::<Option<String>>("", "comment")
                .expect("comment")
                .unwrap_or_default(),
        )
    })
    .collect()
}

/// The migrated template's name, made (and the server swept) once per
/// test process.
async fn template(base: &str) -> String {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("{TEMPLATE_PREFIX}{}", migrations_digest());
            let admin = admin(base).await;
            execute(&admin, &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})")).await;
            sweep(&admin, &name).await;
            let exists = names(
                &admin,
                &format!(
                    "SELECT datname, NULL::text AS comment FROM pg_database WHERE datname = '{name}'"
                ),
            )
            .await;
            if exists.is_empty() {
                make_template(&admin, base, &name).await;
            }
            execute(&admin, &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})")).await;
            admin.close().await.expect("close admin connection");
            name
        })
        .await
        .clone()
}

/// Builds the template under a temporary name with roster's own migration
/// path (as a server would on a fresh database), then renames it.
async fn make_template(admin: &DatabaseConnection, base: &str, name: &str) {
    let building = format!("{name}_building");
    // Left over if a process died while building it.
    execute(
        admin,
        &format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
    )
    .await;
    execute(admin, &format!("CREATE DATABASE \"{building}\"")).await;
    let store = roster::store::Store::connect(&database_url(base, &building), 1)
        .await
        .expect("migrate the template");
    store.close().await.expect("close the template");
    // The closed pool's server process may take a moment to go, and a
    // database with a session cannot be renamed.
    let rename = format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\"");
    for attempt in 1.. {
        match admin.execute_unprepared(&rename).await {
            Ok(_) => break,
            Err(err) if attempt < 100 && err.to_string().contains("being accessed") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("{rename}: {err}"),
        }
    }
    execute(
        admin,
        &format!("ALTER DATABASE \"{name}\" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
    )
    .await;
    let made = chrono::Utc::now().to_rfc3339();
    execute(
        admin,
        &format!("COMMENT ON DATABASE \"{name}\" IS 'roster test template, made {made}'"),
    )
    .await;
}

/// Drops abandoned test databases and other digests' old templates.
async fn sweep(admin: &DatabaseConnection, current_template: &str) {
    let now = std::time::SystemTime::now();
    let abandoned = |made: std::time::SystemTime| {
        now.duration_since(made)
            .is_ok_and(|age| age > ABANDONED_AFTER)
    };
    let candidates = names(
        admin,
        &format!(
            "SELECT datname, shobj_description(oid, 'pg_database') AS comment FROM pg_database \
             WHERE datname LIKE '{TEST_PREFIX}%' OR datname LIKE '{TEMPLATE_PREFIX}%'"
        ),
    )
    .await;
    for (name, comment) in candidates {
        let made = if let Some(id) = name.strip_prefix(TEST_PREFIX) {
            uuidv7_time(id)
        } else if name != current_template {
            comment
                .rsplit_once("made ")
                .and_then(|(_, time)| chrono::DateTime::parse_from_rfc3339(time).ok())
                .map(std::time::SystemTime::from)
        } else {
            None
        };
        if !made.is_some_and(abandoned) {
            continue;
        }
        // A template must stop being one before it can go.
        let sql = format!(
            "ALTER DATABASE \"{name}\" WITH IS_TEMPLATE false; DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        );
        for statement in sql.split("; ") {
            if let Err(err) = admin.execute_unprepared(statement).await {
                eprintln!("sweeping {name}: {err}");
            }
        }
    }
}

/// When the UUIDv7 `id` (simple form) was made; `None` for other ids
/// (databases named by older versions of these tests are left alone).
fn uuidv7_time(id: &str) -> Option<std::time::SystemTime> {
    let id = uuid::Uuid::try_parse(id).ok()?;
    let (seconds, nanos) = id.get_timestamp()?.to_unix();
    Some(std::time::UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// A digest of the migration sources: a changed migration is a new template.
fn migrations_digest() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migration/src");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migration/src")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.file_name().hash(&mut hasher);
        std::fs::read(&file)
            .expect("migration source")
            .hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

#[test]
fn only_uuidv7_names_have_a_time() {
    let made = uuidv7_time(&uuid::Uuid::now_v7().simple().to_string()).unwrap();
    let age = std::time::SystemTime::now().duration_since(made).unwrap();
    assert!(age < Duration::from_secs(60), "{age:?}");
    assert_eq!(
        uuidv7_time(&uuid::Uuid::new_v4().simple().to_string()),
        None
    );
    assert_eq!(uuidv7_time("not-a-uuid"), None);
}
