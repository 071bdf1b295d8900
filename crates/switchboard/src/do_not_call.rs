//! The do-not-call list of `[outbound] dnc_file`: numbers callbacks and campaigns must never
//! dial. One number a line (digits, optional leading `+`); blank lines and lines starting with
//! `#` are ignored. Read at start (`check-config` reports a bad file with its line).

use std::collections::HashSet;
use std::path::Path;

/// Reads the list; the error names the file and the first bad line.
pub fn load(path: &Path) -> Result<HashSet<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    parse(&text).map_err(|(line, reason)| format!("{}:{line}: {reason}", path.display()))
}

/// The numbers of a list's text; `Err((line, reason))` at the first bad line.
pub fn parse(text: &str) -> Result<HashSet<String>, (usize, String)> {
    let mut numbers = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !crate::switch::is_dialable(line) {
            return Err((index + 1, format!("{line:?} is not a number")));
        }
        numbers.insert(line.to_owned());
    }
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_comments_and_blank_lines() {
        let numbers = parse("# opted out\n+8613800000001\n\n  2002  \n").expect("valid");
        assert_eq!(numbers.len(), 2);
        assert!(numbers.contains("+8613800000001"));
        assert!(numbers.contains("2002"));
    }

    #[test]
    fn a_bad_line_is_named() {
        assert_eq!(
            parse("2001\nnot a number\n"),
            Err((2, "\"not a number\" is not a number".to_owned()))
        );
        let missing = load(Path::new("/nonexistent/dnc.txt")).expect_err("no file");
        assert!(
            missing.starts_with("cannot read /nonexistent/dnc.txt"),
            "{missing}"
        );
    }
}
