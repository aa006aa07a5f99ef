//! `roster provider-portal reconcile`: compares roster's organizations
//! with the Provider Portal's developers and, when asked, repairs.

use std::fmt::Write as _;

use clap::{Args, Subcommand};

use roster::{
    config::{ProviderPortalConfig, defaults},
    provider_portal::{
        client::PortalClient,
        reconcile::{self, Changes, Comparison},
        worker::IdentityWorker,
    },
    signal::Signal,
    store::Store,
};

/// `roster provider-portal ...`.
#[derive(Debug, Args)]
pub struct ProviderPortalArgs {
    #[command(subcommand)]
    pub command: ProviderPortalCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProviderPortalCommand {
    /// Compare roster's organizations with the Provider Portal's developers
    /// (a dry run unless --apply).
    Reconcile(ReconcileArgs),
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// roster's database, as for `roster serve`.
    #[arg(long, env = "DATABASE_URL", default_value = defaults::DATABASE_URL)]
    pub database_url: String,
    #[command(flatten)]
    pub portal: ProviderPortalConfig,
    /// Create the identities the Provider Portal lacks, delete those that
    /// deleted organizations left behind, and refresh pending/active.
    #[arg(long)]
    pub apply: bool,
    /// With --apply: also delete developers roster knows nothing of. Never
    /// the default: they may belong to something else.
    #[arg(long, requires = "apply")]
    pub delete_unknown: bool,
}

/// How a reconciliation ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// roster and the Provider Portal agree (after --apply, if given).
    InSync,
    /// They differ (a dry run found differences, or --apply left some).
    Differ,
}

/// Runs `roster provider-portal reconcile`, printing to stdout.
pub async fn run(args: ReconcileArgs) -> Result<Verdict, String> {
    let settings = args
        .portal
        .settings()
        .map_err(|err| err.to_string())?
        .ok_or("set ROSTER_PROVIDER_PORTAL_URL and ROSTER_PROVIDER_PORTAL_TOKEN (or _FILE)")?;
    let client = PortalClient::new(&settings)?;
    let store = Store::connect(&args.database_url, 2)
        .await
        .map_err(|err| format!("database: {err}"))?;
    let worker = IdentityWorker::new(
        store.clone(),
        client,
        Signal::default(),
        settings.timeout,
        settings.poll_interval,
        settings.max_backoff,
    );
    let comparison = reconcile::compare(&store, &worker)
        .await
        .map_err(|err| err.to_string())?;
    print!("{}", describe(&comparison));
    let verdict = if !args.apply {
        if !comparison.is_clean() {
            println!("dry run: nothing changed (run with --apply to repair)");
        }
        verdict(&comparison)
    } else {
        let changes = Changes {
            create_missing: true,
            delete_unknown: args.delete_unknown,
        };
        let applied = reconcile::apply(&store, &worker, &comparison, changes)
            .await
            .map_err(|err| err.to_string())?;
        let delivered = worker
            .deliver_all()
            .await
            .map_err(|err| format!("delivering: {err}"))?;
        println!(
            "applied: {} created, {} deleted (left behind), {} unknown deleted, {} statuses refreshed{}",
            applied.requeued_creates,
            applied.requeued_deletes,
            applied.deleted_unknown,
            applied.refreshed,
            if delivered {
                ""
            } else {
                "; the Provider Portal failed meanwhile, the server's worker retries the rest"
            }
        );
        let after = reconcile::compare(&store, &worker)
            .await
            .map_err(|err| err.to_string())?;
        println!("after --apply:");
        print!("{}", describe(&after));
        verdict(&after)
    };
    let _ = store.close().await;
    Ok(verdict)
}

fn verdict(comparison: &Comparison) -> Verdict {
    if comparison.is_clean() {
        Verdict::InSync
    } else {
        Verdict::Differ
    }
}

/// The comparison as a person reads it.
pub fn describe(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "in sync: {}", c.in_sync);
    let _ = writeln!(out, "being delivered now: {}", c.in_flight);
    let _ = writeln!(out, "missing in the Provider Portal: {}", c.missing.len());
    for m in &c.missing {
        let o = &m.organization;
        let _ = writeln!(
            out,
            "  {}  organization {} ({}), shown as {}",
            o.developer_id,
            o.organization_id,
            o.slug,
            o.state.as_str()
        );
    }
    let _ = writeln!(out, "status differs: {}", c.status_differs.len());
    for d in &c.status_differs {
        let o = &d.organization;
        let _ = writeln!(
            out,
            "  {}  organization {} ({}): roster shows {}, the Provider Portal says {}",
            o.developer_id,
            o.organization_id,
            o.slug,
            o.state.as_str(),
            d.portal.as_str()
        );
    }
    let _ = writeln!(
        out,
        "left behind by deleted organizations: {}",
        c.left_behind.len()
    );
    for (organization, developer) in &c.left_behind {
        let _ = writeln!(out, "  {developer}  (organization {organization}, deleted)");
    }
    let _ = writeln!(
        out,
        "only in the Provider Portal (not roster's): {}",
        c.unknown.len()
    );
    for d in &c.unknown {
        let _ = writeln!(out, "  {}  {:?}", d.id, d.name);
    }
    out
}
