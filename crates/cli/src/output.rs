//! Writing to the terminal: results to stdout, progress and errors to stderr, colour only on a
//! terminal (and never with NO_COLOR), and a closed pipe (`safeshift history | head`) ends
//! output quietly instead of panicking.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anstyle::{AnsiColor, Style};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Prints a line of results to stdout.
pub fn out(line: impl Display) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = anstream::stdout();
    if let Err(error) = writeln!(stdout, "{line}")
        && error.kind() == std::io::ErrorKind::BrokenPipe
    {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Prints a line of progress or diagnostics to stderr.
pub fn err(line: impl Display) {
    let mut stderr = anstream::stderr();
    let _ = writeln!(stderr, "{line}");
}

pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();
pub const GREEN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
pub const YELLOW: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
pub const RED: Style = Style::new()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)))
    .bold();
pub const CYAN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));

/// Text in a style (the style is dropped when the output is not a terminal).
pub fn styled(style: Style, text: impl Display) -> String {
    format!("{style}{text}{style:#}")
}

/// Pads `text` to `width` characters, ignoring the escape codes of styled text.
pub fn pad(text: &str, width: usize) -> String {
    let visible = visible_width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(visible)))
}

pub fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

/// Lays out rows as aligned columns separated by two spaces; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| visible_width(cell))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    if c + 1 == row.len() {
                        cell.clone()
                    } else {
                        pad(cell, widths[c])
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

/// `1.2 s`, `340 ms` (the same words a run records).
pub use safeshift_deploy::millis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_styled_cells() {
        let rows = vec![
            vec!["VERSION".into(), "STATE".into(), "NAME".into()],
            vec!["0001".into(), styled(GREEN, "applied"), "create".into()],
        ];
        let lines = table(&rows);
        assert_eq!(
            visible_width(&lines[0]),
            visible_width(&lines[1]) + "NAME".len() - "create".len()
        );
        assert!(lines[0].starts_with("VERSION  STATE    NAME"));
    }
}
