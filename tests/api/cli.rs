//! The `roster` binary itself: configuration errors and `roster token`.

use std::process::Command;

use roster::auth::token::{DEVELOPMENT_SECRET, TokenVerifier};

fn roster() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    // Start from a clean slate: the developer's environment must not leak in.
    for (key, _) in std::env::vars() {
        if key.starts_with("ROSTER_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn bad_configuration_is_one_clear_message_and_a_nonzero_exit() {
    let cases: [&[&str]; 4] = [
        &["--listen", "0.0.0.0:0"],
        &["--max-members-per-organization", "0"],
        &["--database-url", "mysql://localhost/roster"],
        &["--portal-url", "not a url"],
    ];
    for args in cases {
        let output = roster().args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("roster: configuration error: "),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
    let unknown = roster().args(["--no-such-flag"]).output().unwrap();
    assert!(!unknown.status.success());
}

#[test]
fn roster_token_prints_a_token_the_server_accepts() {
    let output = roster()
        .args([
            "token",
            "--sub",
            "alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice",
            "--scope",
            "events.read",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap();
    let verifier = TokenVerifier::new(Some(DEVELOPMENT_SECRET), None, None, None).unwrap();
    let caller = verifier.verify(token.trim()).unwrap();
    assert_eq!(caller.user_id.as_str(), "alice");
    assert_eq!(caller.email.as_deref(), Some("alice@example.com"));
    assert!(caller.email_verified);
    assert_eq!(caller.name.as_deref(), Some("Alice"));
    assert!(caller.has_scope("events.read"));

    let unverified = roster()
        .args(["token", "--sub", "bob", "--unverified"])
        .output()
        .unwrap();
    let caller = verifier
        .verify(String::from_utf8(unverified.stdout).unwrap().trim())
        .unwrap();
    assert!(!caller.email_verified);
}

#[test]
fn roster_bench_runs_every_workload_and_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let output = roster()
        .args([
            "bench",
            "--duration",
            "300ms",
            "--warmup",
            "0s",
            "--concurrency",
            "4",
            "--connections",
            "2",
        ])
        .args([
            "--memberships",
            "300",
            "--big-organization-members",
            "60",
            "--members-per-organization",
            "10",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("vs health"), "{table}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let outcomes = report["outcomes"].as_array().unwrap();
    let names: Vec<&str> = outcomes
        .iter()
        .map(|o| o["workload"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "health_check",
            "check_permission",
            "batch_check_permissions_10",
            "get_organization",
            "list_members_50_of_10k",
            "update_member_role",
            "create_organization",
            "create_invitation",
        ]
    );
    for outcome in outcomes {
        assert_eq!(outcome["errors"], 0, "{outcome}");
        assert!(outcome["requests"].as_u64().unwrap() > 0, "{outcome}");
        assert!(
            outcome["ratio_to_health"].as_f64().unwrap() > 0.0,
            "{outcome}"
        );
    }
    assert!(report["server_rss_mib"].as_f64().unwrap() > 1.0);
}
