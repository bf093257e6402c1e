//! The attempt a driver has in progress, shared by the drivers.

use crate::error::{DriverError, ErrorKind};
use crate::history::{NewRecord, Timeouts};

/// An attempt in progress.
pub(crate) struct Attempt {
    pub record: NewRecord,
    pub timeouts: Timeouts,
    /// The `running` row of a non-transactional attempt; a transactional one is written at the end.
    pub id: Option<i64>,
    /// When it began, as an SQL expression.
    pub started_at: String,
    /// When it began, by this process's clock.
    pub began: std::time::Instant,
}

impl Attempt {
    pub fn running_id(&self) -> Result<i64, DriverError> {
        self.id.ok_or_else(|| {
            DriverError::new(
                ErrorKind::Statement,
                "progress is recorded only for attempts without a transaction",
            )
        })
    }
}

pub(crate) fn no_attempt() -> DriverError {
    DriverError::new(ErrorKind::Statement, "no attempt is in progress")
}
