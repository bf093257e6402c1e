//! `safeshift explain [RULE]`: a rule's page (risk, lock, what it blocks, why, the safe
//! alternative, examples), or the list of rules.

use crate::cli::ExplainArgs;
use crate::exit::{CliError, Exit};
use crate::output::{out, table};

pub fn run(args: &ExplainArgs) -> Result<Exit, CliError> {
    match &args.rule {
        Some(rule) => {
            let page = safeshift_lint::explain(rule).map_err(|error| {
                CliError::usage_with_help(error.to_string(), "run `safeshift explain` for the list")
            })?;
            out(page.trim_end());
        }
        None => {
            let rules = safeshift_lint::rules();
            let rows: Vec<Vec<String>> = rules
                .iter()
                .map(|rule| {
                    vec![
                        rule.id.to_string(),
                        rule.risk.as_str().to_owned(),
                        rule.title.to_string(),
                    ]
                })
                .collect();
            for line in table(&rows) {
                out(line);
            }
            out(format!(
                "\n{} rules. `safeshift explain <rule>` prints one in full.",
                rules.len()
            ));
        }
    }
    Ok(Exit::Success)
}
