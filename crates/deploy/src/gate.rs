//! The lint gate before `up`: the migrations to apply may not carry a finding above the accepted
//! risk unless it is acknowledged. It refuses on the evaluation `lint` and `plan` show (see
//! [`crate::evaluation::evaluate_pending`]): the same findings, graded by the same table sizes.

use safeshift_lint::{Evaluation, Risk};
use safeshift_runner::RunError;

use crate::error::DeployError;

/// Refuses the run when the evaluation of the migrations to apply (`None`: nothing to lint)
/// has a finding above `accepted` that is not acknowledged.
pub fn check(evaluation: Option<&Evaluation>, accepted: Risk) -> Result<(), DeployError> {
    let Some(blocked) = evaluation.and_then(|e| safeshift_lint::blocked_up(e, accepted)) else {
        return Ok(());
    };
    let count = blocked.count;
    Err(DeployError::Blocked {
        error: RunError::Blocked {
            version: blocked.version.clone(),
            message: format!(
                "{count} finding{} above {accepted} risk in pending migrations; nothing was applied",
                if count == 1 { "" } else { "s" }
            ),
            help: "make the migration safe (see the safe alternative above), acknowledge the finding with \
                   `-- safeshift:allow <rule-id> <reason>` on the statement, or run `safeshift up --allow-risk high`"
                .to_owned(),
        },
        blocked: Box::new(blocked),
    })
}
