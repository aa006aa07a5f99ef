//! `TestApp`: the real roster server on an ephemeral port, with its own
//! database (a temporary SQLite file, or a fresh PostgreSQL database when
//! `TEST_DATABASE_URL` is set), called through the generated clients.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use roster::{
    auth::token::{DEVELOPMENT_SECRET, TokenRequest, mint_hs256},
    config::Config,
    mail::{EmailMessage, MemoryMailer},
    pb::{
        self, authorization_service_client::AuthorizationServiceClient,
        event_service_client::EventServiceClient,
        membership_service_client::MembershipServiceClient,
        organization_service_client::OrganizationServiceClient,
    },
};
use sea_orm::{ConnectionTrait, Database};

pub use crate::scratch::TestDb;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// Which database a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// Base URL from `TEST_DATABASE_URL`; each test gets its own database on that server.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL, if `TEST_DATABASE_URL` is set.
    pub fn postgres() -> Option<Backend> {
        std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(Backend::Postgres)
    }

    /// PostgreSQL for a test that was built to run on it: a missing
    /// `TEST_DATABASE_URL` fails the test instead of passing it silently.
    pub fn required_postgres() -> Backend {
        Self::postgres().expect(
            "TEST_DATABASE_URL is not set, but the PostgreSQL tests were built with it; \
             set it again (or unset it and rebuild to skip them)",
        )
    }
}

/// Declares tests that run once on SQLite and once on PostgreSQL. Each
/// named test is an ordinary `async fn name(backend: Backend)` in the same
/// module, which spawns its own app and so can choose its configuration;
/// the macro adds `name::sqlite` and `name::postgres`.
///
/// The PostgreSQL variants are compiled as ignored when `TEST_DATABASE_URL`
/// was not set at build time (`build.rs` sets the `postgres_tests` cfg), so
/// `cargo test` reports them as ignored rather than as passed. Tests that
/// need more start with `needs(cfg, "why")`: both variants are ignored,
/// with that reason, unless `build.rs` set `cfg`; `needs_python` is that
/// for the tests that need [`test_python`].
#[macro_export]
macro_rules! backend_tests {
    (needs($cfg:meta, $why:literal); $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[cfg_attr(not($cfg), ignore = $why)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[cfg_attr(
                    not(postgres_tests),
                    ignore = "TEST_DATABASE_URL was not set when the tests were built"
                )]
                #[cfg_attr(all(postgres_tests, not($cfg)), ignore = $why)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::required_postgres()).await
                }
            }
        )*
    };
    // The SMTP and client tests: they need `test_python()`.
    (needs_python; $($name:ident),* $(,)?) => {
        $crate::backend_tests!(
            needs(python_tests, "ROSTER_TEST_PYTHON was not set when the tests were built");
            $($name),*
        );
    };
    // The import tests: they need `test_node()` and tests/better-auth installed.
    (needs_node; $($name:ident),* $(,)?) => {
        $crate::backend_tests!(
            needs(better_auth_tests, "ROSTER_TEST_NODE was not set when the tests were built");
            $($name),*
        );
    };
    ($($name:ident),* $(,)?) => {
        // `all()` always holds: no further requirement.
        $crate::backend_tests!(needs(all(), ""); $($name),*);
    };
}

/// The Python of the SMTP and client tests, with the tools `.ci/run`
/// installs beside it (`.venv/bin`): `ROSTER_TEST_PYTHON`. Those tests were
/// built to run (the variable was set at build time), so its absence now
/// fails them instead of passing them silently.
pub fn test_python() -> std::path::PathBuf {
    std::env::var_os("ROSTER_TEST_PYTHON")
        .filter(|path| !path.is_empty())
        .map(std::path::PathBuf::from)
        .expect(
            "ROSTER_TEST_PYTHON is not set, but the tests that need it were built with it; \
             set it again (or unset it and rebuild to skip them)",
        )
}

/// The `node` of the import tests (`ROSTER_TEST_NODE`), which runs the
/// Better Auth fixture in tests/better-auth (`npm ci --prefix
/// tests/better-auth` installs it). Like [`test_python`], its absence fails
/// the tests that were built to need it.
pub fn test_node() -> std::path::PathBuf {
    std::env::var_os("ROSTER_TEST_NODE")
        .filter(|path| !path.is_empty())
        .map(std::path::PathBuf::from)
        .expect(
            "ROSTER_TEST_NODE is not set, but the tests that need it were built with it; \
             set it again (or unset it and rebuild to skip them)",
        )
}

/// Whether `command` runs and exits with status 0.
pub fn works(command: &mut std::process::Command) -> bool {
    use std::process::Stdio;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type Orgs = OrganizationServiceClient<InterceptedService<Channel, Bearer>>;
pub type Members = MembershipServiceClient<InterceptedService<Channel, Bearer>>;
pub type Events = EventServiceClient<InterceptedService<Channel, Bearer>>;
pub type Authz = AuthorizationServiceClient<InterceptedService<Channel, Bearer>>;

/// A running roster.
pub struct TestApp {
    pub mailer: Arc<MemoryMailer>,
    pub config: Config,
    address: SocketAddr,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), roster::ServeError>>>,
    // Declared last: dropped after the server has stopped.
    _db: TestDb,
}

impl TestApp {
    /// roster with the default configuration.
    pub async fn spawn(backend: &Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// roster with the configuration adjusted by `configure`.
    pub async fn spawn_with(backend: &Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
        let (database_url, db) = TestDb::create(backend).await;
        let mut config = Config::with_database(database_url);
        configure(&mut config);
        Self::start(config, db).await
    }

    /// Another roster on this one's database, as a second replica would be.
    pub async fn replica(&self) -> TestApp {
        Self::start(self.config.clone(), TestDb::Shared).await
    }

    async fn start(config: Config, db: TestDb) -> TestApp {
        init_test_log();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let mailer = Arc::new(MemoryMailer::default());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = start_server(&config, listener, &mailer, stopped);
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let app = TestApp {
            mailer,
            config,
            address: addr,
            channel,
            shutdown: Some(shutdown),
            server: Some(server),
            _db: db,
        };
        app.wait_until_serving().await;
        app
    }

    /// Stops the server and starts a new one on the same database (and a
    /// new port), as a redeploy would.
    pub async fn restart(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        self.server = Some(start_server(&self.config, listener, &self.mailer, stopped));
        self.shutdown = Some(shutdown);
        self.address = addr;
        self.channel = Channel::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_lazy();
        self.wait_until_serving().await;
    }

    /// Begins a graceful shutdown and waits for the server to finish.
    pub async fn stop(&mut self) -> Result<(), roster::ServeError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("the server task panicked"),
            None => Ok(()),
        }
    }

    /// Polls health until the server answers (migrations run first).
    async fn wait_until_serving(&self) {
        let mut health = tonic_health::pb::health_client::HealthClient::new(self.channel.clone());
        for _ in 0..300 {
            let request = tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            };
            if health.check(request).await.is_ok() {
                return;
            }
            if self.server.as_ref().is_some_and(JoinHandle::is_finished) {
                panic!("roster stopped while starting");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("roster did not start serving");
    }

    /// The number `sql` (a `SELECT COUNT(*) AS n ...`) finds in this app's
    /// database, read over a connection of its own.
    pub async fn count(&self, sql: &str) -> i64 {
        let db = Database::connect(&self.config.database_url)
            .await
            .expect("connect to the app's database");
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .expect("count query")
            .expect("a row");
        let n: i64 = row.try_get("", "n").expect("column n");
        db.close().await.expect("close");
        n
    }

    /// Waits up to ten seconds until [`Self::count`] of `sql` is `wanted`.
    pub async fn wait_for_count(&self, sql: &str, wanted: i64) {
        let mut n = -1;
        for _ in 0..200 {
            n = self.count(sql).await;
            if n == wanted {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{sql}: {n}, expected {wanted}");
    }

    /// Where it serves.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A token for `user` with a verified `<user>@example.com`.
    pub fn token(&self, user: &str) -> String {
        self.token_with(TokenRequest {
            sub: user.to_owned(),
            email: Some(format!("{user}@example.com")),
            name: Some(display_name(user)),
            email_verified: true,
            ttl: Duration::from_secs(3600),
            ..TokenRequest::default()
        })
    }

    pub fn token_with(&self, request: TokenRequest) -> String {
        let secret = self
            .config
            .jwt
            .jwt_secret
            .as_deref()
            .unwrap_or(DEVELOPMENT_SECRET);
        mint_hs256(secret, &request).expect("mint a token")
    }

    fn bearer(token: Option<&str>) -> Bearer {
        Bearer(token.map(|t| format!("Bearer {t}").parse().expect("ascii token")))
    }

    /// The organization client acting as `user`.
    pub fn orgs(&self, user: &str) -> Orgs {
        self.orgs_with_token(Some(&self.token(user)))
    }

    pub fn orgs_with_token(&self, token: Option<&str>) -> Orgs {
        OrganizationServiceClient::with_interceptor(self.channel(), Self::bearer(token))
    }

    /// The membership client acting as `user`.
    pub fn members(&self, user: &str) -> Members {
        self.members_with_token(Some(&self.token(user)))
    }

    pub fn members_with_token(&self, token: Option<&str>) -> Members {
        MembershipServiceClient::with_interceptor(self.channel(), Self::bearer(token))
    }

    /// The event client acting as `user`.
    pub fn events(&self, user: &str) -> Events {
        self.events_with_token(Some(&self.token(user)))
    }

    pub fn events_with_token(&self, token: Option<&str>) -> Events {
        EventServiceClient::with_interceptor(self.channel(), Self::bearer(token))
    }

    /// The authorization client acting as `user`.
    pub fn authz(&self, user: &str) -> Authz {
        self.authz_with_token(Some(&self.token(user)))
    }

    pub fn authz_with_token(&self, token: Option<&str>) -> Authz {
        AuthorizationServiceClient::with_interceptor(self.channel(), Self::bearer(token))
    }

    /// The authorization client of a service principal with the scope `authz.check`.
    pub fn authz_service(&self) -> Authz {
        let token = self.token_with(TokenRequest {
            sub: "applications-service".into(),
            scopes: vec!["authz.check".into()],
            ttl: Duration::from_secs(3600),
            ..TokenRequest::default()
        });
        self.authz_with_token(Some(&token))
    }

    /// An authorization client whose token has only `events.read` (the wrong scope).
    pub fn event_follower_as_authz(&self) -> Authz {
        let token = self.token_with(TokenRequest {
            sub: "provider-portal".into(),
            scopes: vec!["events.read".into()],
            ttl: Duration::from_secs(3600),
            ..TokenRequest::default()
        });
        self.authz_with_token(Some(&token))
    }

    /// The event client of a service principal with the scope `events.read`.
    pub fn event_follower(&self) -> Events {
        let token = self.token_with(TokenRequest {
            sub: "provider-portal".into(),
            scopes: vec!["events.read".into()],
            ttl: Duration::from_secs(3600),
            ..TokenRequest::default()
        });
        self.events_with_token(Some(&token))
    }

    /// Every email delivered so far (delivery is asynchronous: see [`Self::wait_for_emails`]).
    pub fn emails(&self) -> Vec<EmailMessage> {
        self.mailer.sent()
    }

    /// Waits (up to ten seconds) until at least `count` emails were delivered, and returns them all.
    pub async fn wait_for_emails(&self, count: usize) -> Vec<EmailMessage> {
        for _ in 0..500 {
            let sent = self.mailer.sent();
            if sent.len() >= count {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {count} emails, got {:?}", self.mailer.sent());
    }

    /// Creates an organization owned by `owner` and returns it.
    pub async fn create_org(&self, owner: &str, slug: &str) -> pb::Organization {
        let token = self.token(owner);
        let name = format!("Org {slug}");
        self.create_org_with_token(&token, &name, slug, "create organization")
            .await
    }

    /// Creates an organization as the bearer of `token` and returns it;
    /// `expect` says what its success shows.
    pub async fn create_org_with_token(
        &self,
        token: &str,
        name: &str,
        slug: &str,
        expect: &str,
    ) -> pb::Organization {
        self.orgs_with_token(Some(token))
            .create_organization(pb::CreateOrganizationRequest {
                name: name.to_owned(),
                slug: slug.to_owned(),
                ..Default::default()
            })
            .await
            .expect(expect)
            .into_inner()
            .organization
            .expect("organization in reply")
    }

    /// The members of `org` as the bearer of `token` lists them (one page).
    pub async fn members_as(&self, token: &str, org: &str) -> Vec<pb::Member> {
        self.members_with_token(Some(token))
            .list_members(pb::ListMembersRequest {
                organization_id: org.to_owned(),
                ..Default::default()
            })
            .await
            .expect("list members")
            .into_inner()
            .members
    }

    /// The invitations of `org` as the bearer of `token` lists them (one page).
    pub async fn invitations_as(&self, token: &str, org: &str) -> Vec<pb::Invitation> {
        self.members_with_token(Some(token))
            .list_invitations(pb::ListInvitationsRequest {
                organization_id: org.to_owned(),
                ..Default::default()
            })
            .await
            .expect("list invitations")
            .into_inner()
            .invitations
    }

    /// `UpdateOrganization` as `user`: `changes` names the organization by
    /// its id and carries the new values of the fields in `paths`.
    pub async fn update_org(
        &self,
        user: &str,
        changes: pb::Organization,
        paths: &[&str],
    ) -> Result<pb::Organization, Status> {
        let reply = self
            .orgs(user)
            .update_organization(pb::UpdateOrganizationRequest {
                organization: Some(changes),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|path| (*path).to_owned()).collect(),
                }),
            })
            .await?;
        Ok(reply
            .into_inner()
            .organization
            .expect("organization in reply"))
    }

    /// Invites `user` (as `<user>@example.com`) with `role` on behalf of `inviter`.
    pub async fn invite(
        &self,
        inviter: &str,
        org: &str,
        user: &str,
        role: pb::Role,
    ) -> pb::Invitation {
        self.members(inviter)
            .create_invitation(pb::CreateInvitationRequest {
                organization_id: org.to_owned(),
                email: format!("{user}@example.com"),
                role: role.into(),
                ..Default::default()
            })
            .await
            .expect("create invitation")
            .into_inner()
            .invitation
            .expect("invitation in reply")
    }

    /// Resends invitation `id` as `user` and returns it.
    pub async fn resend(&self, user: &str, id: &str) -> pb::Invitation {
        self.members(user)
            .resend_invitation(pb::ResendInvitationRequest { id: id.to_owned() })
            .await
            .expect("resend invitation")
            .into_inner()
            .invitation
            .expect("invitation in reply")
    }

    /// Makes `user` a member of `org` with `role`, through the real invitation
    /// flow (an owner invites, the user accepts, an owner promotes to owner).
    pub async fn add_member(&self, owner: &str, org: &str, user: &str, role: pb::Role) {
        let invited_as = if role == pb::Role::Owner {
            pb::Role::Admin
        } else {
            role
        };
        let invitation = self.invite(owner, org, user, invited_as).await;
        self.members(user)
            .accept_invitation(pb::AcceptInvitationRequest { id: invitation.id })
            .await
            .expect("accept invitation");
        if role == pb::Role::Owner {
            self.members(owner)
                .update_member_role(pb::UpdateMemberRoleRequest {
                    organization_id: org.to_owned(),
                    user_id: user.to_owned(),
                    role: pb::Role::Owner.into(),
                })
                .await
                .expect("promote to owner");
        }
    }

    /// `user`'s role in `org` as roster reports it (via an owner's GetMember).
    pub async fn role_of(&self, owner: &str, org: &str, user: &str) -> Option<pb::Role> {
        match self
            .members(owner)
            .get_member(pb::GetMemberRequest {
                organization_id: org.to_owned(),
                user_id: user.to_owned(),
            })
            .await
        {
            Ok(reply) => reply.into_inner().member.map(|m| m.role()),
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => panic!("get member: {status:?}"),
        }
    }
}

/// With `TEST_LOG` set (to anything), the servers log as roster does,
/// at the `RUST_LOG` level (default `info`), into the output of the test
/// whose server wrote the line: `cargo test` shows it when the test fails
/// (`-- --nocapture` always).
fn init_test_log() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some_and(|value| !value.is_empty()) {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_target(false)
                .with_ansi(false)
                .with_test_writer()
                .try_init();
        }
    });
}

/// Runs roster in the background: with SMTP when the configuration names an
/// SMTP server, otherwise delivering email into `mailer`.
fn start_server(
    config: &Config,
    listener: TcpListener,
    mailer: &Arc<MemoryMailer>,
    stopped: oneshot::Receiver<()>,
) -> JoinHandle<Result<(), roster::ServeError>> {
    let shutdown = async move {
        let _ = stopped.await;
    };
    let ready = config.validate().expect("a valid test configuration");
    let ready = if config.smtp.smtp_host.is_some() {
        ready
    } else {
        ready.with_mailer(mailer.clone())
    };
    tokio::spawn(roster::serve(ready, listener, shutdown))
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub fn display_name(user: &str) -> String {
    let mut chars = user.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The `google.rpc.ErrorInfo.reason` of a failed call.
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The fields named in `google.rpc.BadRequest` of a failed call.
pub fn bad_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Asserts a call failed with `code` and ErrorInfo `reason`.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, reason_name: &str) {
    match result {
        Ok(value) => panic!("expected {code:?} {reason_name}, got success: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "wrong code: {status:?}");
            assert_eq!(reason(&status), reason_name, "wrong reason: {status:?}");
        }
    }
}

/// Asserts a call failed with `INVALID_ARGUMENT` naming exactly `field`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    match result {
        Ok(value) => panic!("expected INVALID_ARGUMENT on {field}, got success: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert_eq!(reason(&status), "INVALID_ARGUMENT", "{status:?}");
            assert_eq!(bad_fields(&status), vec![field.to_owned()], "{status:?}");
        }
    }
}
