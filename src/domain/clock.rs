//! The one clock roster reads.

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at the database's precision (microseconds), so what we
/// return equals what a later read returns.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
