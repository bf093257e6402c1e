//! What a statement that runs outside a transaction left in the database when the attempt
//! running it stopped there: killed, its connection lost, or failed part-way. Such a statement
//! commits on its own, in steps, so the server may have finished it after its runner died (its
//! progress never recorded), cut it off half-way, or never started it. Resuming must know which:
//! running a finished `CREATE INDEX CONCURRENTLY` again fails for good ("already exists"), and a
//! half-done `DETACH PARTITION CONCURRENTLY` refuses to start over.

/// What the database shows of such a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterruptedOutcome {
    /// Its effect is present, whole and valid: record it as applied without running it.
    /// `evidence` says what was found ("index big_n exists, is valid and has the statement's
    /// definition").
    InEffect { evidence: String },
    /// It stopped half-way, in a state that `finish` completes: run that instead of it.
    HalfDone { evidence: String, finish: String },
    /// It (or an earlier try) left objects that must go before it runs again.
    Leftovers(Vec<Leftover>),
    /// Nothing tells it finished: run it again. `note` says why that is safe when it may have
    /// finished (a VACUUM is harmless twice); `None` when its effect is plainly absent.
    RunAgain { note: Option<String> },
    /// Something with the statement's name is there but is not what the statement makes: it is
    /// neither recorded as applied nor built over.
    Conflict { message: String, hint: String },
}

/// An object an interrupted statement left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// What it is, for people: "the INVALID index big_n_ccnew left by an interrupted REINDEX
    /// CONCURRENTLY".
    pub description: String,
    /// The statement that removes it (it runs outside a transaction).
    pub drop: String,
}
