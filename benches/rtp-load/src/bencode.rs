//! The part of bencode (BitTorrent's encoding, used by rtpengine's ng control protocol) the
//! bench needs: writing a dictionary of strings and string lists, and reading the strings of a
//! reply's top-level dictionary. Anything else in a reply is skipped, never a panic.

use std::collections::BTreeMap;

/// A value the bench sends: a byte string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `<len>:<bytes>`
    Text(String),
    /// `l ... e`
    List(Vec<String>),
}

/// Encodes a dictionary; keys come out sorted, as bencode requires.
pub fn encode_dict(entries: &BTreeMap<&str, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'd');
    for (key, value) in entries {
        encode_text(&mut out, key);
        match value {
            Value::Text(text) => encode_text(&mut out, text),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    encode_text(&mut out, item);
                }
                out.push(b'e');
            }
        }
    }
    out.push(b'e');
    out
}

fn encode_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(text.as_bytes());
}

/// Why a reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed bencode at byte {0}")]
pub struct Malformed(pub usize);

/// The string-valued entries of a top-level dictionary (lists, integers and nested
/// dictionaries are skipped).
pub fn decode_dict_strings(input: &[u8]) -> Result<BTreeMap<String, String>, Malformed> {
    let mut reader = Reader { input, at: 0 };
    reader.expect(b'd')?;
    let mut strings = BTreeMap::new();
    while reader.peek()? != b'e' {
        let key = reader.text()?;
        if reader.peek()?.is_ascii_digit() {
            let value = reader.text()?;
            strings.insert(
                String::from_utf8_lossy(key).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            );
        } else {
            reader.skip_value()?;
        }
    }
    Ok(strings)
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Result<u8, Malformed> {
        self.input.get(self.at).copied().ok_or(Malformed(self.at))
    }

    fn expect(&mut self, byte: u8) -> Result<(), Malformed> {
        if self.peek()? != byte {
            return Err(Malformed(self.at));
        }
        self.at += 1;
        Ok(())
    }

    fn text(&mut self) -> Result<&'a [u8], Malformed> {
        let start = self.at;
        let colon = self.input[start..]
            .iter()
            .position(|&b| b == b':')
            .ok_or(Malformed(start))?;
        let len: usize = std::str::from_utf8(&self.input[start..start + colon])
            .ok()
            .and_then(|digits| digits.parse().ok())
            .ok_or(Malformed(start))?;
        let from = start + colon + 1;
        let to = from.checked_add(len).ok_or(Malformed(start))?;
        let text = self.input.get(from..to).ok_or(Malformed(start))?;
        self.at = to;
        Ok(text)
    }

    fn skip_value(&mut self) -> Result<(), Malformed> {
        match self.peek()? {
            b'i' => {
                let end = self.input[self.at..]
                    .iter()
                    .position(|&b| b == b'e')
                    .ok_or(Malformed(self.at))?;
                self.at += end + 1;
            }
            b'l' | b'd' => {
                self.at += 1;
                while self.peek()? != b'e' {
                    self.skip_value()?;
                }
                self.at += 1;
            }
            b'0'..=b'9' => {
                self.text()?;
            }
            _ => return Err(Malformed(self.at)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionaries_encode_with_sorted_keys_and_lists() {
        let mut entries = BTreeMap::new();
        entries.insert("sdp", Value::Text("v=0".to_owned()));
        entries.insert("command", Value::Text("offer".to_owned()));
        entries.insert("flags", Value::List(vec!["a".to_owned()]));
        assert_eq!(
            encode_dict(&entries),
            b"d7:command5:offer5:flagsl1:ae3:sdp3:v=0e".to_vec()
        );
    }

    #[test]
    fn replies_give_their_strings_and_skip_the_rest() {
        let reply = b"d7:created1:x5:counti0e4:listli1eli2ee3:abce3:sdp5:v=0\r\n6:result2:oke";
        let strings = decode_dict_strings(reply).unwrap_or_default();
        assert_eq!(strings.get("result").map(String::as_str), Some("ok"));
        assert_eq!(strings.get("sdp").map(String::as_str), Some("v=0\r\n"));
        assert_eq!(strings.get("created").map(String::as_str), Some("x"));
    }

    #[test]
    fn truncated_or_bad_replies_are_errors() {
        assert!(decode_dict_strings(b"d6:result2:o").is_err());
        assert!(decode_dict_strings(b"l1:ae").is_err());
        assert!(decode_dict_strings(b"d6:resultx2:oke").is_err());
        assert!(decode_dict_strings(b"d99999999999999999999999:ae").is_err());
    }
}
