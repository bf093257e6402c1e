//! What `safeshift lint --fix` did, for people: per file, each statement rewritten (rule, line,
//! before → after), the change to the section's options, warnings, and what was left alone
//! with the reason. Printed before the lint report of the fixed files.

use std::fmt::Write;

use anstyle::{AnsiColor, Color, Style};
use safeshift_lint::FileFix;

/// Characters of a statement shown on one line of the summary before it is cut.
const MAX_STATEMENT_CHARS: usize = 160;

pub fn render(fixes: &[FileFix], color: bool) -> String {
    let paint = |color_code: AnsiColor, text: &str| {
        if color {
            let style = Style::new().bold().fg_color(Some(Color::Ansi(color_code)));
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    };
    let mut text = String::new();
    let mut rewritten_files = 0;
    let mut rewrites = 0;
    let mut left_alone = 0;
    for fix in fixes {
        let path = fix.path.display().to_string().replace('\\', "/");
        if fix.fixed.is_some() {
            rewritten_files += 1;
            let _ = writeln!(text, "{} {path}", paint(AnsiColor::Green, "fixed"));
        } else {
            let _ = writeln!(text, "{} {path}", paint(AnsiColor::Yellow, "not fixed"));
        }
        if let Some(change) = &fix.section_change {
            let _ = writeln!(text, "  {change}");
        }
        for rewrite in &fix.rewrites {
            rewrites += 1;
            let _ = writeln!(
                text,
                "  line {}: {} ({})",
                rewrite.line, rewrite.rule, rewrite.summary
            );
            let _ = writeln!(text, "    - {}", one_line(&rewrite.before));
            for statement in rewrite.after.split(";\n") {
                let _ = writeln!(text, "    + {}", one_line(statement));
            }
            if let Some(caveat) = &rewrite.caveat {
                let _ = writeln!(text, "    note: {caveat}");
            }
        }
        for warning in &fix.warnings {
            let _ = writeln!(text, "  {}: {warning}", paint(AnsiColor::Yellow, "warning"));
        }
        for skipped in &fix.left_alone {
            left_alone += 1;
            let _ = writeln!(
                text,
                "  line {}: {} left alone: {}",
                skipped.line, skipped.rule, skipped.reason
            );
        }
    }
    let _ = writeln!(
        text,
        "--fix: {rewrites} statement{} rewritten in {rewritten_files} file{}, {left_alone} rewritable finding{} left alone; the lint below shows what remains, including findings with no automatic safe form (renames, type changes, volatile defaults: see `safeshift new --rename-column`, `--change-type` and docs/online.md)\n",
        if rewrites == 1 { "" } else { "s" },
        if rewritten_files == 1 { "" } else { "s" },
        if left_alone == 1 { "" } else { "s" },
    );
    text
}

/// A statement on one line: whitespace runs collapsed, cut with `…` when long.
fn one_line(sql: &str) -> String {
    let joined = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= MAX_STATEMENT_CHARS {
        joined
    } else {
        let cut: String = joined.chars().take(MAX_STATEMENT_CHARS - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_statements_are_cut_on_one_line() {
        assert_eq!(
            one_line("CREATE INDEX i\n    ON t (a)"),
            "CREATE INDEX i ON t (a)"
        );
        let long = "x ".repeat(120);
        let shown = one_line(&long);
        assert_eq!(shown.chars().count(), MAX_STATEMENT_CHARS);
        assert!(shown.ends_with('…'));
    }
}
