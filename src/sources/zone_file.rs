//! RFC 1035 zone files beside the objects (`--zone-file`): their records, at the lowest
//! precedence.
//!
//! A file is read record by record: a bad record is one warning naming its file and
//! line, and the rest of the file serves. Each record is kept in the object set as an
//! object of the internal kind `ZoneFile` (namespace: the file, name: `line N`), so that
//! `/explain`, `/zone` and the status page name where it came from, and the manifests'
//! watch reloads it (editors' renames, a ConfigMap's `..data` swap).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::{DNSClass, LowerName, Name, RData, RecordType};
use hickory_proto::serialize::txt::{Parser, parse_ttl};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{self, Kept, Output, Source};
use super::manifests::LoadError;
use super::objects::{Key, ObjectSet, Stored};
use crate::config::Filters;
use crate::zone::{self, Entry, EntryName, ObjectRef, RecordData};

/// The kind label of zone-file records in `/explain`, `/zone` and warnings.
pub const KIND: &str = "ZoneFile";

/// The zone files to read, and the domains their origins must be (or be under).
#[derive(Clone, Debug, Default)]
pub struct ZoneFiles {
    pub paths: Vec<PathBuf>,
    pub domains: Vec<Name>,
}

/// The internal kind that zone-file records are kept under. It exists for the kind
/// registry only: no `--resources` kind needs it, so it is never read from manifests or
/// the API ([`kind::find`] and [`kind::needed`] leave it out); the records are made by
/// [`read_text`].
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8s-gateway.internal",
    version = "v1",
    kind = "ZoneFile",
    root = "ZoneFile",
    derive = "PartialEq",
    namespaced
)]
pub struct ZoneFileSpec {}

/// One record of a zone file, as the object set keeps it.
#[derive(Debug, PartialEq)]
pub struct ZoneRecord {
    /// `ZoneFile <file>/line <N>`.
    pub object: ObjectRef,
    pub name: Name,
    pub data: RecordData,
    /// The record's TTL, else `$TTL`, else the last TTL given; none: `--ttl`.
    pub ttl: Option<u32>,
}

impl Kept for ZoneRecord {
    fn ignored(&self) -> bool {
        false
    }

    fn key(&self) -> Key {
        (self.object.namespace.clone(), self.object.name.clone())
    }

    /// A record of a file: no API object to record Events on.
    fn uid(&self) -> Option<&str> {
        None
    }
}

impl Source for ZoneFile {
    const NEEDED_BY: &'static [zone::Kind] = &[];
    const SCOPED: bool = false;

    type Kept = ZoneRecord;

    /// Never called on a read object (see [`ZoneFile`]): a record that names nothing.
    fn keep(self) -> ZoneRecord {
        ZoneRecord {
            object: ObjectRef::new(KIND, "", ""),
            name: Name::root(),
            data: RecordData::Txt(String::new()),
            ttl: None,
        }
    }

    fn entries(objects: &ObjectSet, _: &Filters, out: &mut Output) {
        for record in objects.all::<ZoneFile>() {
            out.entries.push(Entry {
                name: EntryName::Absolute(record.name.clone()),
                data: record.data.clone(),
                ttl: record.ttl,
                kind: zone::Kind::ZoneFile,
                object: record.object.clone(),
            });
        }
    }
}

/// What one read of the zone files found: the records (as the manifests' loader lays
/// them into the object set) and the problems.
pub type Read = (
    Vec<(&'static dyn kind::Kind, Stored, Option<Arc<str>>)>,
    Vec<LoadError>,
);

/// Reads every zone file of `files`. A file that cannot be read, or whose origin is
/// none of the domains, is one error; a bad record one warning; the rest serves.
pub fn load(files: &ZoneFiles) -> Read {
    static ZONE_FILE: kind::Of<ZoneFile> = kind::Of::KIND;
    let mut read = Vec::new();
    let mut errors = Vec::new();
    for path in &files.paths {
        let text = match super::manifests::read_file(path) {
            Ok(text) => text,
            Err(message) => {
                errors.push(LoadError {
                    file: path.clone(),
                    message,
                });
                continue;
            }
        };
        let location: Arc<str> = format!("file {}", path.display()).into();
        let (records, problems) = read_text(path, &text, &files.domains);
        for record in records {
            read.push((
                &ZONE_FILE as &dyn kind::Kind,
                Arc::new(record) as Stored,
                Some(location.clone()),
            ));
        }
        errors.extend(problems.into_iter().map(|message| LoadError {
            file: path.clone(),
            message,
        }));
    }
    (read, errors)
}

/// One record (or directive) as the splitter finds it, before it is understood.
#[derive(Debug, PartialEq)]
pub struct Split {
    /// The line it starts on, from 1.
    pub line: usize,
    /// Whether the line starts with a blank: the owner is the previous record's.
    pub blank_owner: bool,
    pub fields: Vec<Field>,
    /// What is wrong with its syntax (an unclosed quote or parenthesis).
    pub error: Option<String>,
}

/// One field of a record: its text as written (escapes kept), without its quotes.
#[derive(Debug, PartialEq)]
pub struct Field {
    pub text: String,
    pub quoted: bool,
}

/// Splits a zone file into its records (RFC 1035 §5.1): parentheses join lines, `;`
/// starts a comment, quotes and `\` escape both. NB: ours, not hickory-proto's, because
/// its `Parser` stops at a file's first error and its `Lexer` is private: split here,
/// each record is parsed on its own and a bad one costs only itself.
pub fn split(text: &str) -> Vec<Split> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut current: Option<Split> = None;
    let mut field: Option<String> = None;
    let mut depth = 0usize;
    fn finish(field: &mut Option<String>, split: &mut Option<Split>) {
        if let (Some(text), Some(split)) = (field.take(), split.as_mut()) {
            split.fields.push(Field {
                text,
                quoted: false,
            });
        }
    }
    fn push(split: &mut Option<Split>, out: &mut Vec<Split>) {
        if let Some(split) = split.take()
            && (!split.fields.is_empty() || split.error.is_some())
        {
            out.push(split);
        }
    }
    loop {
        let Some(c) = chars.next() else {
            finish(&mut field, &mut current);
            if depth > 0
                && let Some(split) = current.as_mut()
            {
                split
                    .error
                    .get_or_insert_with(|| "\"(\" without \")\"".into());
            }
            push(&mut current, &mut out);
            return out;
        };
        if current.is_none() {
            current = Some(Split {
                line,
                blank_owner: c == ' ' || c == '\t',
                fields: Vec::new(),
                error: None,
            });
        }
        match c {
            '\n' => {
                line += 1;
                finish(&mut field, &mut current);
                if depth == 0 {
                    push(&mut current, &mut out);
                }
            }
            ';' => while chars.next_if(|&c| c != '\n').is_some() {},
            '(' => {
                finish(&mut field, &mut current);
                depth += 1;
            }
            ')' => {
                finish(&mut field, &mut current);
                match depth.checked_sub(1) {
                    Some(d) => depth = d,
                    None => {
                        if let Some(split) = current.as_mut() {
                            split
                                .error
                                .get_or_insert_with(|| "\")\" without \"(\"".into());
                        }
                    }
                }
            }
            '"' => {
                finish(&mut field, &mut current);
                let mut text = String::new();
                let mut closed = false;
                while let Some(c) = chars.next_if(|&c| c != '\n') {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            text.push('\\');
                            if let Some(next) = chars.next_if(|&c| c != '\n') {
                                text.push(next);
                            }
                        }
                        c => text.push(c),
                    }
                }
                if let Some(split) = current.as_mut() {
                    if !closed {
                        split
                            .error
                            .get_or_insert_with(|| "a quote without its closing quote".into());
                    }
                    split.fields.push(Field { text, quoted: true });
                }
            }
            '\\' => {
                let text = field.get_or_insert_with(String::new);
                text.push('\\');
                if let Some(next) = chars.next_if(|&c| c != '\n') {
                    text.push(next);
                }
            }
            c if c.is_whitespace() => finish(&mut field, &mut current),
            c => {
                field.get_or_insert_with(String::new).push(c);
            }
        }
    }
}

/// Decodes a character-string's escapes (RFC 1035 §5.1): `\DDD` is the byte of that
/// decimal value, `\X` is X. NB: hickory-proto 0.26's lexer reads `\DDD` as
/// `(D1 << 16) + (D2 << 8) + D3` (`"a\059b"` came out as `a\u{50b}b`, not `a;b`), so
/// TXT data is decoded here.
pub fn decode_escapes(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let digits = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        if let Some(digits) = digits {
            let value = digits
                .iter()
                .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
            let byte = u8::try_from(value)
                .map_err(|_| format!("\\{} is over 255", String::from_utf8_lossy(digits)))?;
            out.push(byte);
            i += 4;
        } else if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return Err("a \\ followed by fewer than three digits".into());
        } else if let Some(&next) = bytes.get(i + 1) {
            out.push(next);
            i += 2;
        } else {
            return Err("a \\ at the end of a string".into());
        }
    }
    Ok(out)
}

/// The records of one zone file's text, and a message per problem (`line N: ...`, or
/// one for the whole file when its origin is not ours). `file` names the records.
pub fn read_text(file: &Path, text: &str, domains: &[Name]) -> (Vec<ZoneRecord>, Vec<String>) {
    let splits = split(text);
    let origin = match origin_of(&splits) {
        Ok(origin) => origin,
        Err(message) => return (Vec::new(), vec![message]),
    };
    let lower = LowerName::from(&origin);
    if !domains.iter().any(|d| LowerName::from(d).zone_of(&lower)) {
        let domains: Vec<String> = domains.iter().map(ToString::to_string).collect();
        let message = format!(
            "its origin {origin} is none of the domains ({}) nor under one: the file is skipped",
            domains.join(", ")
        );
        return (Vec::new(), vec![message]);
    }
    let file_label = file.display().to_string();
    let mut reader = Reading {
        origin: origin.clone(),
        apex: lower,
        now: origin,
        default_ttl: None,
        last_ttl: None,
        owner: None,
    };
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for split in &splits {
        match reader.record(split) {
            Ok(Some((name, data, ttl))) => records.push(ZoneRecord {
                object: ObjectRef::new(KIND, &file_label, &format!("line {}", split.line)),
                name,
                data,
                ttl,
            }),
            Ok(None) => {}
            Err(message) => problems.push(format!("line {}: {message}", split.line)),
        }
    }
    (records, problems)
}

/// The zone's origin: its `$ORIGIN` when one comes before any record, else the owner
/// of its SOA.
fn origin_of(splits: &[Split]) -> Result<Name, String> {
    for split in splits {
        let Some(first) = split.fields.first() else {
            continue;
        };
        if !split.blank_owner && !first.quoted && first.text.starts_with('$') {
            if first.text.eq_ignore_ascii_case("$ORIGIN") {
                let text = split.fields.get(1).map_or("", |f| f.text.as_str());
                return absolute(text).map_err(|e| format!("line {}: $ORIGIN {e}", split.line));
            }
            continue;
        }
        break;
    }
    for split in splits
        .iter()
        .filter(|s| !s.blank_owner && s.error.is_none())
    {
        let types = split.fields.iter().skip(1).take(3);
        if types
            .take_while(|f| {
                f.text.eq_ignore_ascii_case("SOA")
                    || parse_ttl(&f.text).is_ok()
                    || is_class(&f.text)
            })
            .any(|f| f.text.eq_ignore_ascii_case("SOA"))
        {
            return absolute(&split.fields[0].text)
                .map_err(|e| format!("line {}: the SOA's owner {e}", split.line));
        }
    }
    Err(
        "no $ORIGIN before its first record and no SOA: its origin is unknown, the file is skipped"
            .into(),
    )
}

/// An absolute name as written in the file (with its final dot).
fn absolute(text: &str) -> Result<Name, String> {
    if !text.ends_with('.') {
        return Err(format!(
            "{text:?} is not an absolute name (it ends with a dot)"
        ));
    }
    Name::parse(text, None).map_err(|e| format!("{text:?}: {e}"))
}

fn is_class(text: &str) -> bool {
    ["IN", "CH", "CS", "HS"]
        .iter()
        .any(|c| text.eq_ignore_ascii_case(c))
}

/// What the reading of one file carries from record to record.
struct Reading {
    origin: Name,
    apex: LowerName,
    /// The current `$ORIGIN`.
    now: Name,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    /// The last owner written: a record with a blank owner is its.
    owner: Option<Name>,
}

impl Reading {
    /// The record of one split: `None` for a directive or what is ignored on purpose
    /// (the apex SOA and NS).
    fn record(&mut self, split: &Split) -> Result<Option<(Name, RecordData, Option<u32>)>, String> {
        let fields = &split.fields;
        let first = fields.first().map_or("", |f| f.text.as_str());
        let directive = !split.blank_owner && fields.first().is_some_and(|f| !f.quoted);
        if directive && first.starts_with('$') {
            return self.directive(split);
        }
        let rest = if split.blank_owner {
            &fields[..]
        } else {
            // Set before the syntax is checked: the blank-owner lines after a bad record
            // still belong to its owner.
            self.owner = if first == "@" {
                Some(self.now.clone())
            } else {
                Name::parse(first, Some(&self.now)).ok()
            };
            fields.get(1..).unwrap_or_default()
        };
        if let Some(error) = &split.error {
            return Err(error.clone());
        }
        let owner = match &self.owner {
            Some(owner) => owner.clone(),
            None if split.blank_owner => return Err("no owner name before this record".into()),
            None => return Err(format!("{first:?} is not a domain name")),
        };
        let mut ttl = None;
        let mut found = None;
        for (i, field) in rest.iter().enumerate() {
            if field.quoted {
                break;
            }
            if ttl.is_none()
                && let Ok(value) = parse_ttl(&field.text)
            {
                ttl = Some(value);
            } else if is_class(&field.text) {
                if !field.text.eq_ignore_ascii_case("IN") {
                    return Err(format!("class {} is not served", field.text.to_uppercase()));
                }
            } else {
                let upper = field.text.to_ascii_uppercase();
                let rtype = RecordType::from_str(&upper)
                    .map_err(|_| format!("{:?} is not a record type", field.text))?;
                found = Some((rtype, &rest[i + 1..]));
                break;
            }
        }
        let Some((rtype, rdata)) = found else {
            return Err("no record type".into());
        };
        if ttl.is_some() {
            self.last_ttl = ttl;
        }
        let ttl = ttl.or(self.default_ttl).or(self.last_ttl);
        let at_apex = LowerName::from(&owner) == self.apex;
        match rtype {
            RecordType::SOA | RecordType::NS if at_apex => {
                tracing::debug!(
                    line = split.line,
                    "the zone file's apex {rtype} is ignored: ours is served"
                );
                return Ok(None);
            }
            RecordType::A
            | RecordType::AAAA
            | RecordType::CNAME
            | RecordType::TXT
            | RecordType::SRV => {}
            other => return Err(format!("type {other} is not served: skipped")),
        }
        if !self.apex.zone_of(&LowerName::from(&owner)) {
            return Err(format!(
                "{owner} is outside the file's origin {}",
                self.origin
            ));
        }
        let data = parse_rdata(&self.now, &owner, rtype, rdata)?;
        Ok(Some((owner, data, ttl)))
    }

    fn directive(
        &mut self,
        split: &Split,
    ) -> Result<Option<(Name, RecordData, Option<u32>)>, String> {
        if let Some(error) = &split.error {
            return Err(error.clone());
        }
        let name = split.fields[0].text.to_ascii_uppercase();
        let value = split.fields.get(1).map(|f| f.text.as_str());
        match (name.as_str(), value) {
            ("$ORIGIN", Some(value)) => {
                self.now = Name::parse(value, Some(&self.now))
                    .map_err(|e| format!("$ORIGIN {value:?}: {e}"))?;
            }
            ("$TTL", Some(value)) => {
                self.default_ttl =
                    Some(parse_ttl(value).map_err(|e| format!("$TTL {value:?}: {e}"))?);
            }
            ("$INCLUDE", _) => {
                return Err(
                    "$INCLUDE is not read: a zone file given must be self-contained".into(),
                );
            }
            (_, None) => return Err(format!("{} without its value", split.fields[0].text)),
            _ => return Err(format!("unknown directive {}", split.fields[0].text)),
        }
        Ok(None)
    }
}

/// Parses one record's data with hickory-proto (through its zone-file parser, on this
/// record alone), decoding TXT itself (see [`decode_escapes`]).
fn parse_rdata(
    origin: &Name,
    owner: &Name,
    rtype: RecordType,
    rdata: &[Field],
) -> Result<RecordData, String> {
    let mut text = format!("$ORIGIN {origin}\n{owner} 0 IN {rtype}");
    for field in rdata {
        text.push(' ');
        if field.quoted {
            text.push('"');
            text.push_str(&field.text);
            text.push('"');
        } else {
            text.push_str(&field.text);
        }
    }
    text.push('\n');
    let (_, sets) = Parser::new(text, None, Some(origin.clone()))
        .parse()
        .map_err(|e| format!("{rtype} record: {e}"))?;
    let record = sets
        .values()
        .flat_map(|set| set.records_without_rrsigs())
        .next()
        .ok_or_else(|| format!("{rtype} record: no data"))?;
    if record.dns_class != DNSClass::IN {
        return Err(format!("class {} is not served", record.dns_class));
    }
    Ok(match &record.data {
        RData::A(a) => RecordData::Address(a.0.into()),
        RData::AAAA(aaaa) => RecordData::Address(aaaa.0.into()),
        RData::CNAME(cname) => RecordData::Cname(cname.0.clone()),
        RData::SRV(srv) => RecordData::Srv {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: srv.target.clone(),
        },
        RData::TXT(_) => {
            let mut bytes = Vec::new();
            for field in rdata {
                bytes.extend(decode_escapes(&field.text).map_err(|e| format!("TXT record: {e}"))?);
            }
            // NB: the zone keeps TXT as text; bytes that are not UTF-8 would be served
            // altered, so they are refused.
            RecordData::Txt(String::from_utf8(bytes).map_err(|_| {
                "TXT record: its data is not UTF-8 text, which is all that is served".to_string()
            })?)
        }
        other => return Err(format!("type {} is not served", other.record_type())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(split: &Split) -> Vec<&str> {
        split.fields.iter().map(|f| f.text.as_str()).collect()
    }

    #[test]
    fn parentheses_join_lines_and_comments_end_at_the_line() {
        let splits = split(
            "$ORIGIN home.example.\n@ IN SOA ns hostmaster ( 1 ; serial\n  3600 600\n  1209600 60 )\nweb A 10.0.0.1 ; web\n",
        );
        assert_eq!(splits.len(), 3);
        assert_eq!(fields(&splits[0]), ["$ORIGIN", "home.example."]);
        assert_eq!(
            fields(&splits[1]),
            [
                "@",
                "IN",
                "SOA",
                "ns",
                "hostmaster",
                "1",
                "3600",
                "600",
                "1209600",
                "60"
            ]
        );
        assert_eq!(splits[2].line, 5);
        assert_eq!(fields(&splits[2]), ["web", "A", "10.0.0.1"]);
    }

    #[test]
    fn quotes_keep_blanks_semicolons_and_escaped_quotes() {
        let splits = split("t TXT \"a ; b\" \"say \\\"hi\\\"\" x\\;y \"\"\n");
        assert_eq!(
            fields(&splits[0]),
            ["t", "TXT", "a ; b", "say \\\"hi\\\"", "x\\;y", ""]
        );
        let quoted: Vec<bool> = splits[0].fields.iter().map(|f| f.quoted).collect();
        assert_eq!(quoted, [false, false, true, true, false, true]);
    }

    #[test]
    fn a_blank_first_column_keeps_the_previous_owner() {
        let splits = split("web A 10.0.0.1\n\tA 10.0.0.2\n   ; only a comment\n\n");
        assert_eq!(splits.len(), 2);
        assert!(!splits[0].blank_owner);
        assert!(splits[1].blank_owner);
        assert_eq!(fields(&splits[1]), ["A", "10.0.0.2"]);
    }

    #[test]
    fn an_unclosed_quote_is_an_error_of_its_line_only() {
        let splits = split("a TXT \"open\nb A 10.0.0.1\nc A 10.0.0.2 )\n");
        assert_eq!(splits.len(), 3);
        assert!(splits[0].error.as_deref().unwrap().contains("quote"));
        assert_eq!(splits[1].error, None);
        assert!(splits[2].error.as_deref().unwrap().contains(")"));
    }

    #[test]
    fn an_unclosed_parenthesis_is_an_error_at_its_line() {
        let splits = split("ok A 10.0.0.1\nbad A ( 10.0.0.2\n");
        assert_eq!(splits.len(), 2);
        assert_eq!(splits[1].line, 2);
        assert!(splits[1].error.as_deref().unwrap().contains("("));
    }

    #[test]
    fn decimal_escapes_are_bytes() {
        assert_eq!(decode_escapes(r"a\059b").unwrap(), b"a;b");
        assert_eq!(decode_escapes(r"\034q\034").unwrap(), b"\"q\"");
        assert_eq!(decode_escapes(r#"x\"y\\z"#).unwrap(), b"x\"y\\z");
        assert!(decode_escapes(r"\256").is_err());
        assert!(decode_escapes(r"\05").is_err());
    }

    /// hickory-proto's own reading of `\DDD`: when this fails, hickory has fixed it and
    /// TXT need not be decoded here any more.
    #[test]
    fn hickory_reads_decimal_escapes_wrongly() {
        let text = "$ORIGIN home.example.\nt 60 IN TXT \"a\\059b\"\n";
        let (_, sets) = Parser::new(text, None, None).parse().unwrap();
        let record = sets
            .values()
            .next()
            .unwrap()
            .records_without_rrsigs()
            .next()
            .unwrap();
        let RData::TXT(txt) = &record.data else {
            panic!("not TXT");
        };
        assert_ne!(&*txt.txt_data[0], b"a;b");
    }

    /// Every prefix of a file full of edge cases (cut inside quotes, parentheses,
    /// escapes): read without a panic, each problem on a line of its own.
    #[test]
    fn no_prefix_of_a_file_panics() {
        let text = "$ORIGIN home.example.\n$TTL 5m\n)\n(\n\\\n\"\n@ SOA ns h ( 1 2\n 3 4 5 )\n\tA 10.0.0.1\nt TXT \"a\\\"b\\059\" c\\\n$INCLUDE\n$ORIGIN\n* CNAME @\ns SRV 1 2 3 .\n";
        for end in (0..=text.len()).filter(|&end| text.is_char_boundary(end)) {
            let (_, problems) = read(&text[..end]);
            assert!(problems.iter().all(|p| !p.contains('\n')), "{problems:?}");
        }
    }

    fn domains() -> Vec<Name> {
        vec![Name::from_ascii("home.example.").unwrap()]
    }

    fn read(text: &str) -> (Vec<ZoneRecord>, Vec<String>) {
        read_text(Path::new("home.zone"), text, &domains())
    }

    #[test]
    fn records_read_with_their_line_ttl_and_data() {
        let (records, problems) = read(
            "$ORIGIN home.example.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 1209600 60\n@ NS ns\nweb 30 IN A 10.0.0.1\n    AAAA fd00::1\nalias CNAME web\nt TXT \"a\\059b\" \"\\034\"\n_http._tcp SRV 10 5 80 web\n",
        );
        assert_eq!(problems, Vec::<String>::new());
        let got: Vec<(String, String, Option<u32>, String)> = records
            .iter()
            .map(|r| {
                (
                    r.object.name.to_string(),
                    r.name.to_string(),
                    r.ttl,
                    format!("{:?}", r.data),
                )
            })
            .collect();
        let web = Name::from_ascii("web.home.example.").unwrap();
        assert_eq!(
            got[0],
            (
                "line 5".into(),
                "web.home.example.".into(),
                Some(30),
                "Address(10.0.0.1)".into()
            )
        );
        assert_eq!(got[1].0, "line 6");
        assert_eq!(got[1].1, "web.home.example.");
        assert_eq!(got[1].2, Some(300));
        assert_eq!(records[2].data, RecordData::Cname(web.clone()));
        assert_eq!(records[3].data, RecordData::Txt("a;b\"".into()));
        assert_eq!(
            records[4].data,
            RecordData::Srv {
                priority: 10,
                weight: 5,
                port: 80,
                target: web
            }
        );
        assert_eq!(&*records[0].object.namespace, "home.zone");
        assert_eq!(&*records[0].object.kind, KIND);
    }

    #[test]
    fn the_origin_is_the_soa_owner_without_origin() {
        let (records, problems) =
            read("home.example. 60 IN SOA ns hostmaster 1 3600 600 1209600 60\nweb A 10.0.0.1\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(records[0].name.to_string(), "web.home.example.");
        assert_eq!(records[0].ttl, Some(60));
    }

    #[test]
    fn an_origin_not_ours_skips_the_file_with_one_message() {
        let (records, problems) = read("$ORIGIN other.example.\nweb A 10.0.0.1\n");
        assert!(records.is_empty());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("other.example."), "{}", problems[0]);
        let (_, problems) = read("web A 10.0.0.1\n");
        assert!(problems[0].contains("origin is unknown"), "{}", problems[0]);
        let (records, problems) = read("$ORIGIN lab.home.example.\nweb A 10.0.0.1\n");
        assert!(problems.is_empty());
        assert_eq!(records[0].name.to_string(), "web.lab.home.example.");
    }

    #[test]
    fn a_bad_or_unserved_record_is_one_problem_and_the_rest_reads() {
        let (records, problems) = read(
            "$ORIGIN home.example.\na A 10.0.0.1\nb A 10.0.0.300\nc MX 10 mail\nd A 10.0.0.4\nsub NS ns.other.\n$INCLUDE other.zone\nfar.other.example. A 10.0.0.5\n",
        );
        let names: Vec<String> = records.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(names, ["a.home.example.", "d.home.example."]);
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems[0].starts_with("line 3: A record"),
            "{}",
            problems[0]
        );
        assert_eq!(problems[1], "line 4: type MX is not served: skipped");
        assert_eq!(problems[2], "line 6: type NS is not served: skipped");
        assert!(problems[3].starts_with("line 7: $INCLUDE"));
        assert!(problems[4].contains("outside"));
        let (records, problems) =
            read("$ORIGIN home.example.\nbin TXT \"\\200\"\nok TXT \"\\195\\169\"\n");
        assert!(
            problems[0].starts_with("line 2: TXT record: its data is not UTF-8"),
            "{problems:?}"
        );
        assert_eq!(records[0].data, RecordData::Txt("é".into()));
    }
}
