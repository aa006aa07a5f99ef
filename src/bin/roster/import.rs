//! `roster import better-auth`: prints what an import from a Better Auth
//! database would write and every problem it finds (a dry run); with
//! `--apply`, writes it. The work is the library's (`roster::import`).

use clap::{Args, Subcommand};

use roster::{
    config::defaults,
    import::{self, ImportError, Options, better_auth::Source},
    store::Store,
};

/// `roster import ...`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub command: ImportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import organizations, members, invitations and active organizations
    /// from Better Auth's organization plugin (a dry run unless --apply).
    BetterAuth(BetterAuthArgs),
}

#[derive(Debug, Args)]
pub struct BetterAuthArgs {
    /// The Better Auth database: `postgres://...` or `sqlite://path` (opened read-only).
    #[arg(long)]
    pub from: String,
    /// roster's database, as for `roster serve`.
    #[arg(long, env = "DATABASE_URL", default_value = defaults::DATABASE_URL)]
    pub database_url: String,
    /// Write the import (refused while a problem stands unresolved).
    #[arg(long)]
    pub apply: bool,
    /// Leave out every row with a problem instead of refusing (an
    /// organization with one goes with its members and invitations).
    #[arg(long)]
    pub skip_invalid: bool,
    /// Make the oldest admin the owner of an organization that has none.
    #[arg(long)]
    pub promote_oldest_admin: bool,
}

/// How an import ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing wrong (imported, or would be, or nothing to do).
    Clean,
    /// Problems stand unresolved: refused.
    Refused,
}

/// Runs `roster import better-auth`, printing to stdout.
pub async fn run(args: BetterAuthArgs) -> Result<Verdict, ImportError> {
    let source = Source::connect(&args.from).await?;
    let t = &source.tables;
    println!(
        "Better Auth tables: {}, {}, {}, {}, {}",
        t.organization,
        t.member,
        t.invitation.as_deref().unwrap_or("(no invitation table)"),
        t.user,
        t.session.as_deref().unwrap_or("(no session table)"),
    );
    let snapshot = source.read().await;
    source.close().await;
    let snapshot = snapshot?;
    let store = Store::connect(&args.database_url, 2).await?;
    let result = decide(&store, &snapshot, &args).await;
    let _ = store.close().await;
    result
}

async fn decide(
    store: &Store,
    snapshot: &import::better_auth::Snapshot,
    args: &BetterAuthArgs,
) -> Result<Verdict, ImportError> {
    let options = Options {
        skip_invalid: args.skip_invalid,
        promote_oldest_admin: args.promote_oldest_admin,
    };
    let now = chrono::Utc::now();
    let (plan, applied) = if args.apply {
        import::plan_and_apply(store, snapshot, &options, now).await?
    } else {
        (
            import::plan_only(store, snapshot, &options, now).await?,
            None,
        )
    };
    print!("{}", import::describe(&plan, now));
    if plan.is_refused() {
        println!(
            "refused: resolve the problems in Better Auth, or say how to treat them \
             (--skip-invalid, --promote-oldest-admin); nothing written"
        );
        return Ok(Verdict::Refused);
    }
    match applied {
        _ if plan.is_empty() => {
            println!("nothing to import: roster already has everything (nothing written)");
        }
        None => println!("dry run: nothing written (run with --apply to import)"),
        Some(applied) => println!(
            "imported: {} organizations, {} members, {} invitations, {} new people, {} active organizations",
            applied.organizations,
            applied.members,
            applied.invitations,
            applied.users,
            applied.active_organizations
        ),
    }
    Ok(Verdict::Clean)
}
