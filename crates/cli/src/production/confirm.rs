//! Asking a person to confirm: they type the database's name on the terminal. Without a terminal
//! nobody can answer, so the run stops at once with a message saying to pass `--yes` — it never
//! waits for input that cannot come.

use std::io::{BufRead, IsTerminal, Write};

use safeshift::Refusal;

/// How the confirmation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// `--yes` was given.
    Given,
    /// The person typed the name.
    Typed,
}

/// Before any work: refuses at once when confirmation will be needed and cannot be asked for.
pub fn require_possible(what: &str, environment: &str, yes: bool) -> Result<(), Refusal> {
    if yes || std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(unanswerable(
        format!(
            "{what} in the `{environment}` environment needs confirmation, and standard input is not a terminal"
        ),
        Some(
            "nothing was changed; run it on a terminal to type the database name, or pass --yes to confirm in advance",
        ),
    ))
}

/// Asks for the database name on the terminal (the prompt goes to stderr). `--yes` skips it.
pub fn ask(database: &str, what: &str, yes: bool) -> Result<Confirmation, Refusal> {
    if yes {
        return Ok(Confirmation::Given);
    }
    if !std::io::stdin().is_terminal() {
        return Err(unanswerable(
            format!("{what} needs confirmation, and standard input is not a terminal"),
            Some("nothing was changed; pass --yes to confirm in advance"),
        ));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(
        stderr,
        "Type the database name ({database}) to {what}, anything else to stop: "
    );
    let _ = stderr.flush();
    let mut answer = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| unanswerable(format!("could not read the confirmation: {error}"), None))?;
    if read == 0 {
        return Err(unanswerable(
            "no confirmation given (end of input); nothing was changed",
            None,
        ));
    }
    if matches_name(&answer, database) {
        Ok(Confirmation::Typed)
    } else {
        Err(Refusal {
            unanswerable: false,
            message: format!(
                "confirmation refused: `{}` is not `{database}`; nothing was changed",
                answer.trim()
            ),
            help: None,
        })
    }
}

/// Nobody can answer (no terminal, no input): a usage problem.
fn unanswerable(message: impl Into<String>, help: Option<&str>) -> Refusal {
    Refusal {
        unanswerable: true,
        message: message.into(),
        help: help.map(str::to_owned),
    }
}

fn matches_name(answer: &str, database: &str) -> bool {
    answer.trim() == database
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_name_confirms() {
        assert!(matches_name("shop\n", "shop"));
        assert!(matches_name("  shop ", "shop"));
        assert!(!matches_name("Shop", "shop"));
        assert!(!matches_name("y", "shop"));
        assert!(!matches_name("", "shop"));
    }
}
