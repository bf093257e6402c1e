//! Reading a migration file into normalised text: UTF-8 checked, byte-order mark removed, line
//! endings turned into `\n`. Line numbers are unchanged by the normalisation, so positions found
//! in the normalised text are the positions an editor shows.

use std::path::Path;
use std::sync::Arc;

use crate::error::{SourceError, SourceErrorKind};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A migration file's normalised text with a line index.
#[derive(Debug, Clone)]
pub struct SourceText {
    text: Arc<str>,
    line_starts: Arc<[usize]>,
}

impl SourceText {
    /// Normalises raw file bytes. Fails, with the line and column of the first bad byte, when the
    /// bytes are not UTF-8.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<SourceText, SourceError> {
        let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => {
                let valid = &bytes[..error.valid_up_to()];
                // The prefix is valid by definition, so this cannot fail.
                let prefix = std::str::from_utf8(valid).unwrap_or_default();
                let line = prefix.matches('\n').count() as u32 + 1;
                let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
                let byte = bytes[error.valid_up_to()];
                return Err(SourceError::new(
                    SourceErrorKind::NotUtf8,
                    path,
                    format!(
                        "the file is not valid UTF-8 (byte 0x{byte:02X} at byte offset {})",
                        error.valid_up_to()
                    ),
                )
                .at(line, column)
                .help("save the file as UTF-8; safeshift reads migrations as UTF-8 text"));
            }
        };
        Ok(SourceText::from_normalized(&normalize_line_endings(text)))
    }

    /// Text already normalised (UTF-8, no byte-order mark, `\n` line endings), such as a file
    /// whose placeholders were expanded.
    pub(crate) fn from_normalized(text: &str) -> SourceText {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceText {
            text: Arc::from(text),
            line_starts: Arc::from(line_starts),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// 1-based line and column (counted in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(index) => index,
            Err(index) => index - 1,
        };
        let line_start = self.line_starts[line_index];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line_index as u32 + 1, column as u32)
    }

    /// Byte offset where a 1-based line starts.
    pub fn line_start(&self, line: u32) -> usize {
        self.line_starts
            .get(line.saturating_sub(1) as usize)
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Byte offset where a 1-based line ends (before its newline), or the end of the text.
    pub fn line_end(&self, line: u32) -> usize {
        self.line_starts
            .get(line as usize)
            .map_or(self.text.len(), |&next| next - 1)
    }

    /// The number of lines.
    pub fn line_count(&self) -> u32 {
        self.line_starts.len() as u32
    }

    /// The lines of the text with their 1-based numbers and byte ranges (without the newline).
    pub fn lines(&self) -> impl Iterator<Item = (u32, std::ops::Range<usize>)> + '_ {
        self.line_starts.iter().enumerate().map(|(i, &start)| {
            let end = self
                .line_starts
                .get(i + 1)
                .map_or(self.text.len(), |&next| next - 1);
            (i as u32 + 1, start..end)
        })
    }
}

/// `\r\n` and lone `\r` become `\n`.
fn normalize_line_endings(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_owned();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_bom_normalise_to_the_same_text() {
        let path = Path::new("x.sql");
        let lf = SourceText::from_bytes(path, b"a\nb\n").unwrap();
        let crlf = SourceText::from_bytes(path, b"\xEF\xBB\xBFa\r\nb\r\n").unwrap();
        assert_eq!(lf.as_str(), crlf.as_str());
    }

    #[test]
    fn invalid_utf8_is_located() {
        let error =
            SourceText::from_bytes(Path::new("x.sql"), b"select 1;\nselect '\xff';\n").unwrap_err();
        assert_eq!(error.kind, SourceErrorKind::NotUtf8);
        assert_eq!((error.line, error.column), (Some(2), Some(9)));
        assert!(error.message.contains("0xFF"), "{}", error.message);
    }

    #[test]
    fn line_col_counts_characters() {
        let text = SourceText::from_normalized("ab\nçd\n");
        assert_eq!(text.line_col(0), (1, 1));
        assert_eq!(text.line_col(3), (2, 1));
        assert_eq!(text.line_col(5), (2, 2));
        assert_eq!(text.line_start(2), 3);
    }
}
