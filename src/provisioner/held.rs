//! A session-level advisory lock on a pooled maintenance session. The lock
//! must end with the work that took it. A pooled session whose future was
//! cancelled (a dropped request) goes back to the pool still holding its
//! lock, and keeps it while idle until its next recycle: a template
//! migration on another replica would then wait for ever. So a lock dropped
//! without `release` takes its session out of the pool and closes it, and
//! PostgreSQL ends the lock with the session.

use deadpool_postgres::Object;

use super::ProvisionError;

pub(super) struct HeldLock {
    /// `None` once released (or closed).
    session: Option<Object>,
    key: i64,
    unlock: &'static str,
}

impl HeldLock {
    /// Waits for the exclusive lock `key` on `session`.
    pub async fn exclusive(session: Object, key: i64) -> Result<Self, ProvisionError> {
        Self::take(
            session,
            key,
            "SELECT pg_advisory_lock($1)",
            "SELECT pg_advisory_unlock($1)",
        )
        .await
    }

    /// Waits for the shared lock `key` on `session`.
    pub async fn shared(session: Object, key: i64) -> Result<Self, ProvisionError> {
        Self::take(
            session,
            key,
            "SELECT pg_advisory_lock_shared($1)",
            "SELECT pg_advisory_unlock_shared($1)",
        )
        .await
    }

    async fn take(
        session: Object,
        key: i64,
        lock: &'static str,
        unlock: &'static str,
    ) -> Result<Self, ProvisionError> {
        // The guard exists before the wait: a future cancelled while
        // PostgreSQL still queues the lock closes the session too, or the
        // lock would be granted later to a session idle in the pool.
        let held = Self {
            session: Some(session),
            key,
            unlock,
        };
        held.session().execute(lock, &[&key]).await?;
        Ok(held)
    }

    /// The session that holds the lock.
    pub fn session(&self) -> &Object {
        self.session.as_ref().expect("a held lock has its session")
    }

    /// Unlocks and hands the session back for more work. A failed unlock
    /// closes the session instead (`None`), which ends the lock as surely.
    pub async fn release(mut self) -> Option<Object> {
        match self.session().execute(self.unlock, &[&self.key]).await {
            Ok(_) => self.session.take(),
            Err(_) => None,
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Out of the pool: dropping the client ends the connection.
            drop(Object::take(session));
        }
    }
}
