//! Invitation email over real SMTP: an aiosmtpd server on loopback
//! (`tests/support/smtp_sink.py`), started and stopped by the tests.
//!
//! The tests need Python with aiosmtpd, named by `ROSTER_TEST_PYTHON` when
//! they are built (`.ci/run` makes one in `.venv`); without it they are
//! compiled as ignored, and say why.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use roster::{config::Config, mail::smtp::SmtpTls, pb};

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, test_python, works},
};

/// The test Python, which must be able to import aiosmtpd.
fn python() -> PathBuf {
    let python = test_python();
    assert!(
        works(Command::new(&python).args(["-c", "import aiosmtpd"])),
        "ROSTER_TEST_PYTHON={} cannot import aiosmtpd (pip install aiosmtpd)",
        python.display()
    );
    python
}

/// A running aiosmtpd that records every message it accepts.
struct SmtpSink {
    child: Child,
    port: u16,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

/// One message as the SMTP server received it.
#[derive(Debug, serde::Deserialize)]
struct Received {
    rcpt_tos: Vec<String>,
    data: String,
}

impl SmtpSink {
    /// Starts a sink on `port` (0: any free port).
    fn start(python: &PathBuf, port: u16) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(python, port, dir)
    }

    fn start_in(python: &PathBuf, port: u16, dir: tempfile::TempDir) -> SmtpSink {
        Self::start_slow(python, port, dir, Duration::ZERO)
    }

    /// A sink that takes `delay` over each message before accepting it.
    fn start_slow(
        python: &PathBuf,
        port: u16,
        dir: tempfile::TempDir,
        delay: Duration,
    ) -> SmtpSink {
        let file = dir.path().join("messages.jsonl");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(&file)
            .arg(port.to_string())
            .arg(delay.as_secs_f64().to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the sink prints its port");
        SmtpSink {
            child,
            port,
            file,
            _dir: dir,
        }
    }

    /// Stops the server, keeping what it received; `start_again` brings it back on the same port.
    fn stop(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.port;
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        (port, dir)
    }

    fn messages(&self) -> Vec<Received> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Waits up to `within` for at least `count` messages.
    async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let messages = self.messages();
            if messages.len() >= count || tokio::time::Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn use_smtp(config: &mut Config, port: u16) {
    config.smtp.smtp_host = Some("127.0.0.1".into());
    config.smtp.smtp_port = port;
    config.smtp.smtp_tls = SmtpTls::None;
    config.smtp.smtp_from = "Developer Portal <portal@example.com>".into();
    config.invitation_link_template =
        Some("https://portal.example.com/auth/accept-invitation?invitationId={id}".into());
    config.mail_poll_interval = Duration::from_millis(200);
}

/// Unfolds header lines and returns the value of `name`.
fn header(data: &str, name: &str) -> Option<String> {
    let head = data
        .split("\r\n\r\n")
        .next()
        .or_else(|| data.split("\n\n").next())?;
    let unfolded = head.replace("\r\n ", " ").replace("\n ", " ");
    unfolded.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// The body of a message as its reader sees it: the message is sent
/// quoted-printable (RFC 2045), which breaks long lines with a trailing `=`
/// and writes `=` itself as `=3D`.
fn body_text(data: &str) -> String {
    let body = data
        .split_once("\r\n\r\n")
        .or_else(|| data.split_once("\n\n"))
        .map_or("", |(_, body)| body);
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

backend_tests!(
    needs_python;
    an_invitation_arrives_by_smtp_with_recipient_subject_and_link,
    an_smtp_outage_delays_the_email_but_does_not_lose_it,
    a_restart_does_not_send_a_delivered_email_again,
    two_replicas_and_a_slow_smtp_server_send_each_email_once,
    an_address_the_smtp_server_cannot_take_fails_for_good_and_the_inviter_sees_it,
    a_mailbox_the_smtp_server_refuses_for_good_fails_once_and_the_inviter_sees_it,
);

/// Issue 9, item 14: the sink (like many servers) does not offer SMTPUTF8,
/// so it can never take a non-ASCII address. The email is marked failed
/// for good instead of being retried forever, and the organization's log
/// says so; other email still flows.
async fn an_address_the_smtp_server_cannot_take_fails_for_good_and_the_inviter_sees_it(
    backend: Backend,
) {
    let python = python();
    let sink = SmtpSink::start(&python, 0);
    let app = TestApp::spawn_with(&backend, |c| use_smtp(c, sink.port)).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app
        .members("alice")
        .create_invitation(pb::CreateInvitationRequest {
            organization_id: org.id.clone(),
            email: "jörg@example.com".into(),
            role: pb::Role::Member.into(),
            request_id: String::new(),
            delivery: pb::InvitationDelivery::Unspecified.into(),
        })
        .await
        .expect("a non-ASCII address is valid")
        .into_inner()
        .invitation
        .unwrap();
    let events = audit_log_once_an_email_failed(&app, &org.id).await;
    let failed = events
        .iter()
        .find(|e| e.r#type == "invitation.delivery_failed")
        .expect("invitation.delivery_failed in the audit log");
    assert_eq!(failed.actor_user_id, "system");
    assert_eq!(failed.subject_email, "jörg@example.com");
    assert!(
        failed
            .changes
            .iter()
            .any(|c| c.field == "invitation_id" && c.new_value == invitation.id),
        "{failed:?}"
    );
    // Given up once: not retried, so no second attempt or event.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM mail_outbox WHERE attempts > 1")
            .await,
        0
    );
    // Other email is not held up.
    app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    let messages = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(messages[0].rcpt_tos, ["bob@example.com"]);
}

/// Issue 9, item 13: with two replicas and an SMTP server that took 7 s
/// per message, 20 invitations were delivered 22 times: the lease on a
/// claimed batch ran out while the batch was still being sent, and the
/// other replica claimed the rest again. Here with smaller numbers: a 1 s
/// server, a 1.5 s attempt timeout (so an 8 s lease) and 12 invitations.
/// The first replica claims what is queued while its first email is being
/// sent, about 10 emails: a batch that takes longer than a lease, while the
/// second replica (started once the invitations are made) polls every
/// 200 ms for emails whose lease ran out.
async fn two_replicas_and_a_slow_smtp_server_send_each_email_once(backend: Backend) {
    const INVITATIONS: usize = 12;
    let python = python();
    let sink = SmtpSink::start_slow(
        &python,
        0,
        tempfile::tempdir().unwrap(),
        Duration::from_secs(1),
    );
    let first = TestApp::spawn_with(&backend, |c| {
        use_smtp(c, sink.port);
        c.mail_attempt_timeout = Duration::from_millis(1500);
    })
    .await;
    let org = first.create_org("alice", "acme").await;
    let invitees: Vec<String> = (0..INVITATIONS).map(|i| format!("invitee{i}")).collect();
    for user in &invitees {
        first.invite("alice", &org.id, user, pb::Role::Member).await;
    }
    let _second = first.replica().await;
    let messages = sink.wait_for(INVITATIONS, Duration::from_secs(60)).await;
    assert!(
        messages.len() >= INVITATIONS,
        "{} delivered",
        messages.len()
    );
    // Long enough for a replica whose lease ran out to send again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut recipients: Vec<String> = sink
        .messages()
        .into_iter()
        .map(|m| m.rcpt_tos[0].clone())
        .collect();
    recipients.sort();
    let mut expected: Vec<String> = invitees
        .iter()
        .map(|u| format!("{u}@example.com"))
        .collect();
    expected.sort();
    assert_eq!(
        recipients, expected,
        "every invitation delivered exactly once"
    );
    assert_eq!(
        first
            .count("SELECT COUNT(*) AS n FROM mail_outbox WHERE state = 'sent' AND attempts = 1")
            .await,
        i64::try_from(INVITATIONS).unwrap()
    );
}

/// Issue 9, item 14: a server that refuses a mailbox for good (550) is
/// not asked again; the email is marked failed and the inviter sees
/// `invitation.delivery_failed` in the organization's log.
async fn a_mailbox_the_smtp_server_refuses_for_good_fails_once_and_the_inviter_sees_it(
    backend: Backend,
) {
    let python = python();
    let sink = SmtpSink::start(&python, 0);
    let app = TestApp::spawn_with(&backend, |c| use_smtp(c, sink.port)).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app
        .invite("alice", &org.id, "nobody", pb::Role::Member)
        .await;
    let events = audit_log_once_an_email_failed(&app, &org.id).await;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.r#type == "invitation.delivery_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0].subject_email, "nobody@example.com");
    assert!(
        failed[0]
            .changes
            .iter()
            .any(|c| c.field == "invitation_id" && c.new_value == invitation.id),
        "{:?}",
        failed[0]
    );
    assert!(
        failed[0]
            .changes
            .iter()
            .any(|c| c.field == "error" && c.new_value.contains("550")),
        "{:?}",
        failed[0]
    );
    // Past the first retry's backoff (1 s): no second attempt.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM mail_outbox WHERE attempts <> 1")
            .await,
        0
    );
    assert!(sink.messages().is_empty());
}

async fn an_invitation_arrives_by_smtp_with_recipient_subject_and_link(backend: Backend) {
    let python = python();
    let sink = SmtpSink::start(&python, 0);
    let app = TestApp::spawn_with(&backend, |c| use_smtp(c, sink.port)).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Admin).await;

    let messages = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.rcpt_tos, ["bob@example.com"]);
    assert_eq!(
        header(&message.data, "To").as_deref(),
        Some("bob@example.com")
    );
    assert_eq!(
        header(&message.data, "Subject").as_deref(),
        Some("Alice invited you to join Org acme")
    );
    assert!(
        header(&message.data, "From")
            .unwrap()
            .contains("portal@example.com")
    );
    assert!(header(&message.data, "Message-ID").is_some());
    let link = format!(
        "https://portal.example.com/auth/accept-invitation?invitationId={}",
        invitation.id
    );
    assert_eq!(invitation.link, link, "the reply carries the same link");
    assert!(body_text(&message.data).contains(&link), "{}", message.data);
}

async fn an_smtp_outage_delays_the_email_but_does_not_lose_it(backend: Backend) {
    let python = python();
    // Learn a free port, then take the server down before roster sends.
    let (port, dir) = SmtpSink::start(&python, 0).stop();
    let app = TestApp::spawn_with(&backend, |c| use_smtp(c, port)).await;
    let org = app.create_org("alice", "acme").await;
    app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    // roster tried while the server was down, and recorded the failure.
    app.wait_for_count(
        "SELECT COUNT(*) AS n FROM mail_outbox WHERE state = 'pending' AND attempts >= 1",
        1,
    )
    .await;

    let sink = SmtpSink::start_in(&python, port, dir);
    let messages = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1, "delivered once the server is back");
    assert_eq!(messages[0].rcpt_tos, ["bob@example.com"]);
    // And only once: with bob's email recorded as sent, a later email
    // comes through alone (a second copy of bob's would come first).
    assert_eq!(
        delivered_after(&app, &sink, &org.id, "carol").await,
        ["bob", "carol"]
    );
}

/// Waits until the outbox records every email as sent, invites `user`,
/// and returns the recipients (local parts) of every message the sink has
/// received once `user`'s has arrived.
async fn delivered_after(app: &TestApp, sink: &SmtpSink, org: &str, user: &str) -> Vec<String> {
    app.wait_for_count(
        "SELECT COUNT(*) AS n FROM mail_outbox WHERE state <> 'sent'",
        0,
    )
    .await;
    app.invite("alice", org, user, pb::Role::Member).await;
    let address = format!("{user}@example.com");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let messages = sink.messages();
        if messages.iter().any(|m| m.rcpt_tos == [address.as_str()]) {
            return messages
                .iter()
                .flat_map(|m| &m.rcpt_tos)
                .map(|to| to.trim_end_matches("@example.com").to_owned())
                .collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no email to {address}: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_restart_does_not_send_a_delivered_email_again(backend: Backend) {
    let python = python();
    let sink = SmtpSink::start(&python, 0);
    let mut app = TestApp::spawn_with(&backend, |c| use_smtp(c, sink.port)).await;
    let org = app.create_org("alice", "acme").await;
    app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).await.len(), 1);

    // Delivered and recorded as such before the restart (a crash between
    // the two is the one window for a duplicate, by design)...
    app.wait_for_count(
        "SELECT COUNT(*) AS n FROM mail_outbox WHERE state = 'sent'",
        1,
    )
    .await;
    app.restart().await;
    // ...so after it, the next email comes through alone.
    assert_eq!(
        delivered_after(&app, &sink, &org.id, "carol").await,
        ["bob", "carol"],
        "no duplicate after the restart"
    );
}

/// The organization's audit log (as its owner alice reads it) once one
/// email has failed for good.
async fn audit_log_once_an_email_failed(app: &TestApp, org: &str) -> Vec<pb::Event> {
    app.wait_for_count(
        "SELECT COUNT(*) AS n FROM mail_outbox WHERE state = 'failed'",
        1,
    )
    .await;
    app.events("alice")
        .list_audit_events(pb::ListAuditEventsRequest {
            organization_id: org.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
}
