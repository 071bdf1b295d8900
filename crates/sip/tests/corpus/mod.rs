//! The RFC 4475 torture messages of `rfc4475.sip`, as wire bytes (CRLF line ends, `\xNN`
//! escapes decoded). Shared by the fuzz targets of this crate and of the media crate.

use std::path::Path;

/// (name, bytes) of every message in the corpus file at `path`.
pub fn load(path: &Path) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(path).expect("the corpus file is readable");
    let mut messages: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("=== ") {
            messages.push((name.to_owned(), Vec::new()));
        } else if line.starts_with('#') && messages.is_empty() {
            continue;
        } else if let Some((_, lines)) = messages.last_mut() {
            lines.push(line.to_owned());
        }
    }
    messages
        .into_iter()
        .map(|(name, lines)| {
            let text: String = lines.iter().map(|line| format!("{line}\r\n")).collect();
            (name, unescape(&text))
        })
        .collect()
}

/// Decodes `\xNN` to the octet; everything else is copied.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            if let Some(hex) = text.get(i + 2..i + 4) {
                if let Ok(byte) = u8::from_str_radix(hex, 16) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The part after the first blank line: an SDP body for the SDP targets (of the media crate).
#[allow(dead_code)]
pub fn body(message: &[u8]) -> Option<&[u8]> {
    let at = message.windows(4).position(|w| w == b"\r\n\r\n")?;
    message.get(at + 4..).filter(|body| !body.is_empty())
}
