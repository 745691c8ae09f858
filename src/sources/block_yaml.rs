//! A fast reader for the block-style YAML that `kubectl get -o yaml`, Helm and people write.
//!
//! Reading 100,000 Services from one manifests file with the general YAML parser takes
//! most of the start-up time: it builds events, then a tree, for a subset of YAML that a
//! line-by-line reader can turn into a `serde_json::Value` directly. This module reads
//! that subset and nothing else: block mappings and sequences, plain and quoted one-line
//! scalars, empty flow collections, comments, and literal/folded block scalars. For
//! anything else, or anything it is not sure of, [`parse`] returns `None` and the caller
//! uses the general parser, which also reports the errors. So correctness never depends
//! on the subset: whenever [`parse`] returns a value, the general parser reads the same
//! text into the same value (tested on every YAML file of the repository and fuzzed).

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

/// Nesting deeper than this is left to the general parser (whose own limit is 64).
const MAX_DEPTH: usize = 48;
/// Nodes (collections, keys and scalars) in one text; more are left to the general
/// parser, whose node budget (250,000) then decides, as it did before this reader.
const MAX_NODES: usize = 200_000;
/// Longer keys are left to the general parser (YAML limits implicit keys to 1024).
const MAX_KEY_BYTES: usize = 512;
/// Longer texts are left to the general parser (its scalar budget is 64 MiB).
const MAX_TEXT_BYTES: usize = 32 * 1024 * 1024;
/// More comment lines in a row are left to the general parser: it buffers comments while
/// it looks ahead for the next token, and refuses more than 32.
const MAX_COMMENT_RUN: usize = 16;

/// Reads one YAML document (its `---` marker already removed) written in the block
/// style subset, or `None` when the text is outside it. A document that is a sequence
/// reads as `Value::Array`, so a `kind: List` item span (`- apiVersion: ...`) is an
/// array of one object.
pub fn parse(text: &str) -> Option<Value> {
    if text.len() > MAX_TEXT_BYTES || !plain_text(text.as_bytes()) {
        return None;
    }
    let mut reader = Reader {
        text,
        pos: 0,
        line: None,
        nodes: 0,
        depth: 0,
        declined: false,
    };
    let first = reader.peek()?;
    let value = reader.block(first.indent)?;
    // Anything left (a line less indented than the first) is not one node.
    if reader.peek().is_some() || reader.declined {
        return None;
    }
    Some(value)
}

/// Whether the text has only printable characters, spaces and line feeds, and no
/// document markers: tabs, carriage returns, control characters, byte order marks, line
/// separators and `---` / `...` lines are left to the general parser.
fn plain_text(bytes: &[u8]) -> bool {
    let mut at = 0;
    let mut line_start = true;
    while at < bytes.len() {
        let byte = bytes[at];
        if line_start && matches!(byte, b'-' | b'.') && is_marker(&bytes[at..]) {
            return false;
        }
        line_start = byte == b'\n';
        match byte {
            b' '..=b'~' | b'\n' => {}
            0xC2 if matches!(bytes.get(at + 1), Some(0x80..=0x9F)) => return false, // C1
            0xE2 if bytes.get(at + 1) == Some(&0x80)
                && matches!(bytes.get(at + 2), Some(0xA8 | 0xA9)) =>
            {
                return false; // U+2028, U+2029
            }
            0xEF if matches!(
                bytes.get(at + 1..at + 3),
                Some([0xBB, 0xBF] | [0xBF, 0xBE | 0xBF])
            ) =>
            {
                return false; // U+FEFF, U+FFFE, U+FFFF
            }
            0x80.. => {}
            _ => return false,
        }
        at += 1;
    }
    true
}

/// A `---` or `...` marker at the start of `line`.
fn is_marker(line: &[u8]) -> bool {
    (line.starts_with(b"---") || line.starts_with(b"..."))
        && matches!(line.get(3), None | Some(b' ' | b'\n'))
}

/// One line with content: not blank, not only a comment.
#[derive(Clone, Copy)]
struct Line {
    /// The column where the content starts: the line's indentation, or for the mapping
    /// after a `- ` the column of its first key.
    indent: usize,
    /// Byte offsets of the content and of the line's end (its `\n`, or the text's end).
    start: usize,
    end: usize,
}

struct Reader<'a> {
    text: &'a str,
    /// The start of the next line not yet read.
    pos: usize,
    /// The next content line, once looked at (or the rest of a `- ` line).
    line: Option<Line>,
    nodes: usize,
    depth: usize,
    /// Set when a look at the next line found what the general parser must read (too
    /// many comment lines in a row); the value read is then not returned.
    declined: bool,
}

/// What starts a mapping line.
enum KeyScan<'a> {
    /// A key and the offset just after its `:`.
    Key(Cow<'a, str>, usize),
    /// Not a key: a value (a sequence item's scalar), or an error where a key must be.
    NotKey,
}

impl<'a> Reader<'a> {
    /// The next content line, skipping blank and comment lines.
    fn peek(&mut self) -> Option<Line> {
        if self.line.is_some() {
            return self.line;
        }
        let bytes = self.text.as_bytes();
        let mut comments = 0;
        while self.pos < bytes.len() {
            let start = self.pos;
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
            let indent = bytes[start..end]
                .iter()
                .position(|&b| b != b' ')
                .unwrap_or(end - start);
            if start + indent == end || bytes[start + indent] == b'#' {
                if start + indent < end {
                    comments += 1;
                    if comments > MAX_COMMENT_RUN {
                        self.declined = true;
                        return None;
                    }
                }
                self.pos = (end + 1).min(bytes.len());
                continue;
            }
            self.line = Some(Line {
                indent,
                start: start + indent,
                end,
            });
            return self.line;
        }
        None
    }

    /// Marks the line looked at as read.
    fn consume(&mut self, line: Line) {
        self.pos = (line.end + 1).min(self.text.len());
        self.line = None;
    }

    fn count(&mut self, nodes: usize) -> Option<()> {
        self.nodes += nodes;
        (self.nodes <= MAX_NODES).then_some(())
    }

    /// The collection whose first line is the next one, at `indent`.
    fn block(&mut self, indent: usize) -> Option<Value> {
        let line = self.peek()?;
        if is_entry(&self.text[line.start..line.end]) {
            self.sequence(indent)
        } else {
            self.mapping(indent)
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        self.count(1)?;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// A block mapping whose keys are at `indent`.
    fn mapping(&mut self, indent: usize) -> Option<Value> {
        self.enter()?;
        let mut map = Map::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return None; // a continuation line or a wrong indentation
            }
            let content = &self.text[line.start..line.end];
            let KeyScan::Key(key, after) = scan_key(content) else {
                return None;
            };
            if map.contains_key(key.as_ref()) {
                return None; // the general parser reports duplicates
            }
            self.count(1)?;
            self.consume(line);
            let value = self.value(&content[after..], indent, true)?;
            map.insert(key.into_owned(), value);
        }
        self.depth -= 1;
        Some(Value::Object(map))
    }

    /// A block sequence whose `-` are at `indent`.
    fn sequence(&mut self, indent: usize) -> Option<Value> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return None;
            }
            let content = &self.text[line.start..line.end];
            if !is_entry(content) {
                break; // the next key of a mapping at this indentation
            }
            let rest = &content[1..];
            let spaces = rest.len() - rest.trim_start_matches(' ').len();
            let item = &rest[spaces..];
            if is_entry(item) {
                return None; // `- - x`: a sequence in a sequence on one line
            }
            if !item.is_empty()
                && !item.starts_with('#')
                && let KeyScan::Key(..) = scan_key(item)
            {
                // `- key: value`: a mapping whose keys are at the key's column.
                let column = indent + 1 + spaces;
                self.line = Some(Line {
                    indent: column,
                    start: line.start + 1 + spaces,
                    end: line.end,
                });
                items.push(self.mapping(column)?);
                continue;
            }
            self.consume(line);
            items.push(self.value(rest, indent, false)?);
        }
        self.depth -= 1;
        Some(Value::Array(items))
    }

    /// The value after a key's `:` or an item's `-`: `rest` is the rest of that line,
    /// `owner` the column of the key or the `-`. In a mapping (`in_mapping`) a sequence
    /// may start at the key's own column, as kubectl writes `ports:\n- name: http`.
    fn value(&mut self, rest: &str, owner: usize, in_mapping: bool) -> Option<Value> {
        self.count(1)?;
        let text = rest.trim_start_matches(' ');
        if text.is_empty() || text.starts_with('#') {
            // A comment needs a space before it: `key:#` is not `key:` and a comment.
            if text.len() == rest.len() && !text.is_empty() {
                return None;
            }
            return match self.peek() {
                Some(line) if line.indent > owner => self.block(line.indent),
                Some(line)
                    if in_mapping
                        && line.indent == owner
                        && is_entry(&self.text[line.start..line.end]) =>
                {
                    self.sequence(owner)
                }
                _ => Some(Value::Null),
            };
        }
        let value = match text.as_bytes()[0] {
            b'|' | b'>' => return self.block_scalar(text, owner),
            b'"' => {
                let (value, after) = double_quoted(text)?;
                trailing_ok(&text[after..]).then_some(Value::String(value))?
            }
            b'\'' => {
                let (value, after) = single_quoted(text)?;
                trailing_ok(&text[after..]).then_some(Value::String(value))?
            }
            b'{' | b'[' => {
                let empty = if text.starts_with("{}") {
                    Value::Object(Map::new())
                } else if text.starts_with("[]") {
                    Value::Array(Vec::new())
                } else {
                    return None; // flow collections with content
                };
                trailing_ok(&text[2..]).then_some(empty)?
            }
            _ => plain(text)?,
        };
        // A more indented line after a one-line scalar would continue it (or be an
        // error): both are left to the general parser.
        match self.peek() {
            Some(line) if line.indent > owner => None,
            _ => Some(value),
        }
    }

    /// A literal (`|`, `|-`) or folded (`>`, `>-`) block scalar; `header` starts with
    /// its indicator and the lines after the current one are its content, indented more
    /// than `owner`. Keep chomping (`+`), explicit indentation, more-indented folded
    /// lines, empty leading lines, lines of only spaces beyond the content's indentation
    /// and a last line without a line break are left to the general parser.
    fn block_scalar(&mut self, header: &str, owner: usize) -> Option<Value> {
        let folded = header.starts_with('>');
        let (strip, rest) = match header[1..].strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, &header[1..]),
        };
        if !rest.is_empty() && !rest.starts_with(' ') || !trailing_ok(rest) {
            return None;
        }
        let bytes = self.text.as_bytes();
        let mut out = String::new();
        let mut content_indent = None;
        let mut pending_empty = 0;
        while self.pos < bytes.len() {
            let start = self.pos;
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
            let line = &self.text[start..end];
            let spaces = line.len() - line.trim_start_matches(' ').len();
            let Some(indent) = content_indent else {
                if spaces == line.len() || spaces <= owner {
                    return None; // empty leading lines, or an empty scalar
                }
                content_indent = Some(spaces);
                continue;
            };
            if spaces == line.len() {
                if spaces > indent {
                    return None;
                }
                pending_empty += 1;
            } else if spaces < indent {
                break;
            } else {
                if end == bytes.len() || folded && spaces > indent {
                    return None;
                }
                if !out.is_empty() || pending_empty > 0 {
                    if folded && pending_empty == 0 {
                        out.push(' ');
                    } else {
                        let breaks = pending_empty + usize::from(!folded);
                        out.extend(std::iter::repeat_n('\n', breaks));
                    }
                }
                pending_empty = 0;
                out.push_str(&line[indent..]);
            }
            self.pos = (end + 1).min(bytes.len());
        }
        // No content line before the text's end: an empty scalar.
        content_indent?;
        if !strip {
            out.push('\n');
        }
        Some(Value::String(out))
    }
}

/// Whether a line's content starts a sequence item: `-` alone or followed by a space.
fn is_entry(content: &str) -> bool {
    let bytes = content.as_bytes();
    bytes.first() == Some(&b'-') && matches!(bytes.get(1), None | Some(b' '))
}

/// Whether what follows a scalar on its line is nothing, or spaces and a comment.
fn trailing_ok(rest: &str) -> bool {
    let text = rest.trim_start_matches(' ');
    text.is_empty() || text.starts_with('#') && text.len() < rest.len()
}

/// Reads a key (`name:`, `"name":`, `'name':`) at the start of `content`, followed by a
/// space or the line's end. Plain keys are limited to the characters of Kubernetes
/// label and field names, and must read as strings: `80:`, `true:` or `null:` keys
/// are left to the general parser (it compares keys by their value).
fn scan_key(content: &str) -> KeyScan<'_> {
    let bytes = content.as_bytes();
    let (key, after) = match bytes.first() {
        Some(b'"') => match double_quoted(content) {
            Some((key, after)) => (Cow::Owned(key), after),
            None => return KeyScan::NotKey,
        },
        Some(b'\'') => match single_quoted(content) {
            Some((key, after)) => (Cow::Owned(key), after),
            None => return KeyScan::NotKey,
        },
        _ => {
            let Some(colon) = bytes.iter().position(|&b| !is_key_byte(b)) else {
                return KeyScan::NotKey;
            };
            let key = &content[..colon];
            let first_ok = key
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/'));
            if !first_ok || !matches!(resolve(key), Some(Scalar::Text)) {
                return KeyScan::NotKey;
            }
            (Cow::Borrowed(key), colon)
        }
    };
    if after > MAX_KEY_BYTES
        || bytes.get(after) != Some(&b':')
        || !matches!(bytes.get(after + 1), None | Some(b' '))
    {
        return KeyScan::NotKey;
    }
    KeyScan::Key(key, after + 1)
}

fn is_key_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'/' | b'-')
}

/// A plain scalar and what follows it on its line (a comment). Scalars that start with
/// an indicator or could be read otherwise (`a: b: c`) are left to the general parser.
fn plain(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let first_ok = match bytes[0] {
        b'-' => !matches!(bytes.get(1), None | Some(b' ')),
        b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' => true,
        b'/' | b'_' | b'.' | b'~' | b'$' | b'(' | b'^' | b'=' => true,
        byte => byte >= 0x80,
    };
    if !first_ok {
        return None;
    }
    // The scalar ends at a comment (` #`), without its trailing spaces.
    let end = bytes
        .windows(2)
        .position(|w| w == b" #")
        .unwrap_or(bytes.len());
    let scalar = text[..end].trim_end_matches(' ');
    if scalar.ends_with(':') || scalar.contains(": ") {
        return None;
    }
    Some(match resolve(scalar)? {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Number(n) => Value::Number(n),
        Scalar::Text => Value::String(scalar.to_owned()),
    })
}

/// What a plain scalar reads as.
enum Scalar {
    Null,
    Bool(bool),
    Number(Number),
    /// The scalar's own text.
    Text,
}

/// Resolves a plain scalar the way the general parser does for an untyped value: null
/// (`~`, `null`), YAML 1.1 booleans (`true`, `yes`, `on`, `y` and their negations, any
/// case), decimal integers, floats, else text. `None` for the spellings where it does
/// something this reader does not copy: `+`, `_`, leading zeros, `0x`/`0o`/`0b`,
/// `.inf`/`.nan`, integers beyond 64 bits, and negative non-integers.
fn resolve(text: &str) -> Option<Scalar> {
    if matches!(text, "~" | "null" | "Null" | "NULL") {
        return Some(Scalar::Null);
    }
    if let Some(value) = yaml11_bool(text) {
        return Some(Scalar::Bool(value));
    }
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(b'0'..=b'9' | b'-' | b'.') => {}
        Some(b'+') => return None,
        _ => return Some(Scalar::Text),
    }
    if text.contains('_') {
        return None;
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if digits.len() > 1 && digits.starts_with('0') {
            return None; // read as a float, not as octal
        }
        let number = if negative {
            Number::from(text.parse::<i64>().ok()?)
        } else {
            Number::from(text.parse::<u64>().ok()?)
        };
        return Some(Scalar::Number(number));
    }
    let radix = matches!(
        digits.as_bytes(),
        [b'0', b'x' | b'X' | b'o' | b'O' | b'b' | b'B', ..]
    );
    if radix || digits.eq_ignore_ascii_case(".inf") || digits.eq_ignore_ascii_case(".nan") {
        return None;
    }
    match text.parse::<f64>() {
        Err(_) => Some(Scalar::Text),
        Ok(_) if negative => None,
        // Not finite (`1e999`): the general parser refuses it.
        Ok(value) => Number::from_f64(value).map(Scalar::Number),
    }
}

fn yaml11_bool(text: &str) -> Option<bool> {
    if text.len() > 5 {
        return None;
    }
    let is = |word: &str| text.eq_ignore_ascii_case(word);
    if is("true") || is("yes") || is("y") || is("on") {
        Some(true)
    } else if is("false") || is("no") || is("n") || is("off") {
        Some(false)
    } else {
        None
    }
}

/// A single-quoted scalar closed on the same line (`''` is a quote), and the offset
/// after its closing quote.
fn single_quoted(text: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut at = 1;
    loop {
        let close = at + text[at..].find('\'')?;
        out.push_str(&text[at..close]);
        if text.as_bytes().get(close + 1) == Some(&b'\'') {
            out.push('\'');
            at = close + 2;
        } else {
            return Some((out, close + 1));
        }
    }
}

/// A double-quoted scalar closed on the same line, with the YAML escapes, and the
/// offset after its closing quote. An escaped line break, an unknown escape or a
/// surrogate is left to the general parser.
fn double_quoted(text: &str) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut at = 1;
    loop {
        let special = at + bytes[at..].iter().position(|&b| b == b'"' || b == b'\\')?;
        out.push_str(&text[at..special]);
        if bytes[special] == b'"' {
            return Some((out, special + 1));
        }
        let escape = *bytes.get(special + 1)?;
        at = special + 2;
        let hex_digits = match escape {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => 0,
        };
        if hex_digits > 0 {
            let hex = text.get(at..at + hex_digits)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
            at += hex_digits;
            continue;
        }
        out.push(match escape {
            b'0' => '\0',
            b'a' => '\u{07}',
            b'b' => '\u{08}',
            b't' => '\t',
            b'n' => '\n',
            b'v' => '\u{0B}',
            b'f' => '\u{0C}',
            b'r' => '\r',
            b'e' => '\u{1B}',
            b' ' => ' ',
            b'"' => '"',
            b'/' => '/',
            b'\\' => '\\',
            b'N' => '\u{85}',
            b'_' => '\u{A0}',
            b'L' => '\u{2028}',
            b'P' => '\u{2029}',
            _ => return None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::{Path, PathBuf};

    /// What the general parser reads from a document, as the loader calls it.
    fn general(text: &str) -> Option<Value> {
        let mut documents = serde_saphyr::from_multiple::<Value>(text).ok()?;
        (documents.len() == 1).then(|| documents.remove(0))
    }

    /// The contract: when `parse` reads a value, the general parser reads the same one,
    /// for a document and (when it is a sequence) for a list item span.
    fn assert_contract(text: &str) -> Option<Value> {
        let value = parse(text)?;
        assert_eq!(general(text).as_ref(), Some(&value), "document:\n{text}");
        if let Value::Array(items) = &value {
            let read = serde_saphyr::from_str::<Vec<Value>>(text).ok();
            assert_eq!(read.as_ref(), Some(items), "list item span:\n{text}");
        }
        Some(value)
    }

    /// `text` is read by this reader, as `expected`, as the general parser reads it.
    fn reads(text: &str, expected: Value) {
        assert_eq!(assert_contract(text), Some(expected), "{text}");
    }

    /// `text` is left to the general parser.
    fn declines(text: &str) {
        assert_eq!(parse(text), None, "{text}");
    }

    #[test]
    fn block_mappings_nest() {
        reads(
            "a: 1\nb:\n  c: x\n  d:\n    e: w\nf: z\n",
            json!({"a": 1, "b": {"c": "x", "d": {"e": "w"}}, "f": "z"}),
        );
        reads("  a: 1\n  b: 2\n", json!({"a": 1, "b": 2}));
        reads("a:\n      b: 1\n", json!({"a": {"b": 1}}));
    }

    #[test]
    fn block_sequences_indented_or_at_the_keys_column() {
        reads("a:\n  - x\n  - z\n", json!({"a": ["x", "z"]}));
        // As kubectl prints `ports:` then `- name: http`.
        reads(
            "ports:\n- name: http\n  port: 80\n- name: dns\n  port: 53\ntype: LoadBalancer\n",
            json!({"ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53}],
                   "type": "LoadBalancer"}),
        );
        reads(
            "- a:\n  - x\n  b: 1\n- c\n",
            json!([{"a": ["x"], "b": 1}, "c"]),
        );
        reads("-   a: 1\n    b: 2\n", json!([{"a": 1, "b": 2}]));
        reads("-\n  a: 1\n-\n- b\n", json!([{"a": 1}, null, "b"]));
        reads("-\n  - x\n", json!([["x"]]));
    }

    #[test]
    fn a_kubectl_list_item_reads_as_a_sequence_of_one_object() {
        let item = "- apiVersion: v1\n  kind: Service\n  metadata:\n    name: web\n    \
                    namespace: apps\n    resourceVersion: \"100\"\n  spec:\n    clusterIPs:\n    \
                    - 10.43.0.1\n    ports:\n    - name: http\n      port: 80\n      \
                    targetPort: http\n  status:\n    loadBalancer:\n      ingress:\n      \
                    - ip: 10.64.0.1\n        ipMode: VIP\n";
        let value = assert_contract(item).expect("read");
        assert_eq!(value[0]["spec"]["ports"][0]["port"], json!(80));
        assert_eq!(value[0]["metadata"]["resourceVersion"], json!("100"));
    }

    #[test]
    fn plain_scalars_resolve_as_the_general_parser_does() {
        let cases = [
            ("1", json!(1)),
            ("0", json!(0)),
            ("-5", json!(-5)),
            ("-0", json!(0)),
            ("18446744073709551615", json!(18446744073709551615u64)),
            ("-9223372036854775808", json!(i64::MIN)),
            ("1.5", json!(1.5)),
            ("1e3", json!(1000.0)),
            ("1.", json!(1.0)),
            ("00.5", json!(0.5)),
            (".5", json!(0.5)),
            ("true", json!(true)),
            ("True", json!(true)),
            ("yes", json!(true)),
            ("On", json!(true)),
            ("y", json!(true)),
            ("N", json!(false)),
            ("off", json!(false)),
            ("~", json!(null)),
            ("null", json!(null)),
            ("NULL", json!(null)),
            ("nULL", json!("nULL")),
            ("10.43.0.1", json!("10.43.0.1")),
            ("10:30", json!("10:30")),
            ("12abc", json!("12abc")),
            ("inf", json!("inf")),
            ("NaN", json!("NaN")),
            ("Infinity", json!("Infinity")),
            ("-foo", json!("-foo")),
            ("~foo", json!("~foo")),
            ("a:b", json!("a:b")),
            ("x,y", json!("x,y")),
            ("b#c", json!("b#c")),
            ("http://x/y?z", json!("http://x/y?z")),
            (
                "00000000-0000-4000-8000-000000000001",
                json!("00000000-0000-4000-8000-000000000001"),
            ),
            ("é", json!("é")),
            (".", json!(".")),
        ];
        for (scalar, expected) in cases {
            reads(&format!("a: {scalar}\n"), json!({ "a": expected }));
            reads(&format!("- {scalar}\n"), json!([expected]));
        }
    }

    #[test]
    fn empty_values_are_null() {
        reads("a:\nb: 1\n", json!({"a": null, "b": 1}));
        reads("a:   # nothing\nb:\n", json!({"a": null, "b": null}));
        reads("- \n-\n", json!([null, null]));
    }

    #[test]
    fn quoted_scalars_are_strings_with_their_escapes() {
        reads(
            "a: \"1\"\nb: 'true'\nc: \"\"\nd: ''\ne: 'it''s'\n",
            json!({"a": "1", "b": "true", "c": "", "d": "", "e": "it's"}),
        );
        reads(
            r#"a: "\"\\\/\t\n\r\0\a\b\v\f\e\ \N\_\L\P\x41\u00e9\U0001F600 # not a comment""#,
            json!({"a": "\"\\/\t\n\r\0\u{7}\u{8}\u{b}\u{c}\u{1b} \u{85}\u{a0}\u{2028}\u{2029}Aé😀 # not a comment"}),
        );
        reads("\"a b\": 1\n'c''d': 2\n", json!({"a b": 1, "c'd": 2}));
        reads("a: \"x\"   # comment\n", json!({"a": "x"}));
        reads("- 'x'\n- \"y\"\n", json!(["x", "y"]));
    }

    #[test]
    fn empty_flow_collections() {
        reads(
            "a: {}\nb: []\nc:\n- {}\n- [] # c\n",
            json!({"a": {}, "b": [], "c": [{}, []]}),
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        reads(
            "# head\n\na: 1 # one\n   # indented\n\n# between\nb:\n  # first\n  c: 2\n\n",
            json!({"a": 1, "b": {"c": 2}}),
        );
    }

    #[test]
    fn literal_and_folded_block_scalars() {
        reads("a: |\n  x\n  y\nb: 1\n", json!({"a": "x\ny\n", "b": 1}));
        reads("a: |-\n  x\n\nb: 1\n", json!({"a": "x", "b": 1}));
        reads(
            "a: |\n  x\n\n    indented\n  # not a comment\n\n",
            json!({"a": "x\n\n  indented\n# not a comment\n"}),
        );
        reads(
            "a: >\n  x\n  y\n\n  z\nb: 1\n",
            json!({"a": "x y\nz\n", "b": 1}),
        );
        reads("a: >-\n  x\n  y\n", json!({"a": "x y"}));
        reads("- |\n x\n- a: |\n   y\n", json!(["x\n", {"a": "y\n"}]));
        reads("a: |  # c\n  x\n # c\nb: 1\n", json!({"a": "x\n", "b": 1}));
        // What kubectl keeps of `kubectl apply`.
        reads(
            "metadata:\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {\"apiVersion\":\"v1\",\"kind\":\"Service\"}\n  name: web\n",
            json!({"metadata": {"annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"kind\":\"Service\"}\n"},
                "name": "web"}}),
        );
    }

    #[test]
    fn declines_what_it_does_not_read() {
        let cases: &[&str] = &[
            // Anchors, aliases, tags, merge keys.
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: !custom x\n",
            "<<: {a: 1}\n",
            // Flow collections with content.
            "a: {b: 1}\n",
            "a: [1]\n",
            "a: { }\n",
            // Multi-line scalars.
            "a: x\n  y\n",
            "- x\n  y\n",
            "a: \"x\n  y\"\n",
            "a: 'x\n  y'\n",
            "a: \"x\\\n  y\"\n",
            // Complex keys, directives, markers, a document that is a scalar or empty.
            "? a\n: b\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\n...\n",
            "a: 1\n--- x\n",
            "x\n",
            "# only a comment\n",
            "",
            // Tabs, carriage returns, byte order marks, control characters.
            "a:\n\tb: 1\n",
            "a: x\ty\n",
            "a: 1\r\n",
            "\u{feff}a: 1\n",
            "a: x\u{85}\n",
            "a: \u{7}\n",
            // Duplicate keys, also spelt differently.
            "a: 1\na: 2\n",
            "a: 1\n\"a\": 2\n",
            // Keys that do not read as strings, or with unusual characters.
            "80: x\n",
            "null: x\n",
            "~: x\n",
            "true: x\n",
            "y: x\n",
            "a b: x\n",
            "a:b: x\n",
            "- a b: x\n",
            "key:value\n",
            // Numbers spelt in ways it does not copy.
            "a: +5\n",
            "a: 0x1F\n",
            "a: 0X1F\n",
            "a: 0o17\n",
            "a: 017\n",
            "a: -017\n",
            "a: 1_000\n",
            "a: .inf\n",
            "a: -.inf\n",
            "a: .NaN\n",
            "a: 1e999\n",
            "a: -1.5\n",
            "a: 18446744073709551616\n",
            "a: -9223372036854775809\n",
            // Values a mapping cannot take, and errors.
            "a: b: c\n",
            "a: x:\n",
            "a: - x\n",
            "a: -\n",
            "a: %x\n",
            "a: @x\n",
            "a: \"x\"y\n",
            "a: \"x\"#c\n",
            "a: []x\n",
            "a: \"\\x\"\n",
            "a: \"\\uD800\"\n",
            "a: \"\\ud83d\\ude00\"\n",
            "- - a\n",
            "a:\n  b: 1\n c: 2\n",
            "a:\n  - x\n  b: 1\n",
            "a: 1\n- b\n",
            "  a: 1\nb: 2\n",
            "a:\n  x\n",
            // Block scalars it does not do exactly.
            "a: |+\n  x\n\n",
            "a: |2\n   x\n",
            "a: |\n  x",
            "a: |\n\n  x\n",
            "a: |\n  x\n    \n",
            "a: >\n  x\n   y\n",
            "a: |\nb: 1\n",
            "a: |\n    x\n   y\n",
            "- a: |\n  x\n",
            // Found by the fuzz target: an empty block scalar at the text's end; more
            // comment lines in a row than the general parser buffers.
            &format!("a:\n{}b: 1\n", "# c\n".repeat(40)),
            "a: |\n  x\nc: |\n",
            "a: >-",
            "W: |  \n",
            " -  |\n",
        ];
        for text in cases {
            declines(text);
        }
        reads(
            &format!("a:\n{}b: 1\n", "# c\n".repeat(16)),
            json!({"a": null, "b": 1}),
        );
    }

    #[test]
    fn nesting_beyond_the_limit_is_declined() {
        let deep = |depth: usize| {
            (0..depth)
                .map(|i| format!("{}k:\n", " ".repeat(i)))
                .collect::<String>()
        };
        assert!(parse(&deep(MAX_DEPTH - 1)).is_some());
        declines(&deep(MAX_DEPTH + 1));
    }

    #[test]
    fn more_nodes_than_the_limit_are_declined() {
        let many = |count: usize| (0..count).map(|i| format!("k{i}: v\n")).collect::<String>();
        assert!(parse(&many(MAX_NODES / 3)).is_some());
        declines(&many(MAX_NODES / 2 + 1));
    }

    /// `path` relative to the repository.
    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    /// Every YAML file under `dir` (and JSON too: the loader tries YAML on it).
    fn manifest_files(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                manifest_files(&path, files);
            } else if path
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                files.push(path);
            }
        }
    }

    /// Asserts the contract on every span the loader would give the reader (documents,
    /// and list items), returning how many spans there were and how many it read.
    fn differential(text: &str) -> (usize, usize) {
        let (mut spans, mut read) = (0, 0);
        for document in super::super::manifests::document_spans(text) {
            let mut all: Vec<&str> = vec![document];
            if let Some(items) = super::super::manifests::list_item_spans(document) {
                all.extend(items);
            }
            for span in all {
                spans += 1;
                read += usize::from(assert_contract(span).is_some());
            }
        }
        (spans, read)
    }

    /// `benches/gen-services.py` output: Services as kubectl prints them.
    fn generated(args: &[&str]) -> Option<String> {
        let output = std::process::Command::new("python3")
            .arg(repo("benches/gen-services.py"))
            .args(args)
            .output();
        match output {
            Ok(output) if output.status.success() => {
                Some(String::from_utf8(output.stdout).expect("UTF-8"))
            }
            _ => {
                assert!(std::env::var_os("CI").is_none(), "python3 is missing on CI");
                eprintln!("SKIPPED: python3 is not installed");
                None
            }
        }
    }

    #[test]
    fn reads_every_yaml_file_of_the_repository_as_the_general_parser_does() {
        let mut files = Vec::new();
        for dir in [
            "examples",
            "tests/data",
            "fuzz/seeds",
            "chart",
            ".github",
            "docs",
        ] {
            manifest_files(&repo(dir), &mut files);
        }
        assert!(files.len() > 20, "{files:?}");
        let mut total = (0, 0);
        for file in &files {
            let text = std::fs::read_to_string(file).expect("readable");
            let (spans, read) = differential(&text);
            eprintln!("{}: {read} of {spans} spans read", file.display());
            total = (total.0 + spans, total.1 + read);
        }
        eprintln!("{} of {} spans read by this reader", total.1, total.0);
        // The files written in block style only are read here, not by the general
        // parser (07 has flow sequences, the examples flow mappings).
        for name in [
            "01-shared-gateway",
            "02-cross-namespace-routes",
            "03-grpc",
            "04-tls-v1alpha2",
            "05-tls-v1alpha3",
            "06-gateway-addresses",
        ] {
            let path = repo(&format!("tests/data/gateway-api/{name}.yaml"));
            let text = std::fs::read_to_string(&path).expect("readable");
            let (spans, read) = differential(&text);
            assert!(spans > 0 && read == spans, "{name}: {read} of {spans} read");
        }
    }

    #[test]
    fn reads_services_as_kubectl_prints_them() {
        for args in [&["2000"][..], &["--list", "2000"]] {
            let Some(text) = generated(args) else {
                return;
            };
            let (spans, read) = differential(&text);
            // One document per Service, or the List document (which has flow-free
            // content too) and its 2,000 items.
            assert!(spans >= 2000, "{args:?}: {spans} spans");
            assert_eq!(read, spans, "{args:?}: every span is read here");
        }
    }
}
