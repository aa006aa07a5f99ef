//! A use-case's write transaction and the events recorded in it.
//!
//! Events are the one description of a change: the use-case records them
//! here, in the transaction of the change, and [`Roster::commit`] applies
//! the very same events to this replica's read cache once the transaction
//! has committed. No use-case invalidates the cache by hand, so none can
//! forget to; other replicas (and the follower here, a second time,
//! harmlessly) apply them from the change log.
//!
//! Every event a write records carries the write's acting party (who acted
//! for the caller, from the token's RFC 8693 `act` claim): stamped here,
//! once, so no use-case and no event constructor has to remember it.
//!
//! [`Roster::commit`]: super::Roster

use std::{ops::Deref, sync::Mutex};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
};

use crate::{
    domain::{
        Error,
        event::{EventCursor, NewEvent},
    },
    store,
};

/// An open write transaction that remembers the events recorded in it.
/// Queries run on it as on the transaction itself.
pub(super) struct Write {
    txn: DatabaseTransaction,
    recorded: Mutex<Vec<NewEvent>>,
    /// Who acts for the caller, if anyone; `None` for roster's own writes.
    acting_party: Option<String>,
}

impl Write {
    /// A write whose events carry `acting_party`.
    pub(super) fn new(txn: DatabaseTransaction, acting_party: Option<String>) -> Self {
        Self {
            txn,
            recorded: Mutex::new(Vec::new()),
            acting_party,
        }
    }

    /// Records `event` in this transaction, with the write's acting party,
    /// and returns its cursor (the change's revision); it reaches the read
    /// cache when the transaction commits.
    pub(super) async fn record(&self, mut event: NewEvent) -> Result<EventCursor, Error> {
        event.acting_party.clone_from(&self.acting_party);
        let cursor = store::event::record(&self.txn, event.clone()).await?;
        self.recorded
            .lock()
            .map_err(|_| Error::internal("the recorded events' lock is poisoned"))?
            .push(event);
        Ok(cursor)
    }

    /// Commits; returns the events it recorded, in order, for the read
    /// cache. Use-cases commit through `Roster::commit`, which applies them.
    #[must_use = "the committed events must reach the read cache: commit through Roster::commit"]
    pub(super) async fn commit(self) -> Result<Vec<NewEvent>, Error> {
        self.txn.commit().await?;
        Ok(self
            .recorded
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()))
    }
}

impl Deref for Write {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Write {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}
