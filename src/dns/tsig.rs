//! TSIG (RFC 8945): the `--tsig-key` files, checking a signed request, and signing the
//! messages we send (answers, transfer streams, NOTIFY).
//!
//! The cryptography is hickory-proto's (ring's HMAC, whose verify compares in constant
//! time); this module decides which key, which bytes are covered, and what a failure
//! answers, and appends the TSIG record to bytes already encoded, so the transports only
//! call [`check`] on the way in and [`Signer::sign`] on each message on the way out.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::rdata::TSIG;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError, signed_bitmessage_to_buf};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::response::{Outcome, Transport, size_limit};

/// The fudge we sign with and allow: 300 s, as RFC 8945 §10 recommends and BIND and Knot
/// use.
pub const FUDGE: u16 = 300;

/// Why a `--tsig-key` file is unusable. Never carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--tsig-key {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--tsig-key {path} line {line}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// A shared TSIG key. The secret never shows in `Debug` (nor anywhere else).
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// The key's name, as both ends spell it (compared case-insensitively).
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Reads every key of a key file: BIND's `key "NAME" { algorithm A; secret "B64"; };`
/// (what `tsig-keygen` writes) or Knot's `key: - id: NAME ...` (what `keymgr -t` writes).
pub fn load(path: &Path) -> Result<Vec<Key>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|(line, reason)| Error::Invalid {
        path: path.to_owned(),
        line,
        reason,
    })
}

/// The keys of a key file's text, or the line and reason it cannot be read.
pub fn parse(text: &str) -> Result<Vec<Key>, (usize, String)> {
    let knot = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l == "key:");
    let keys = if knot {
        parse_knot(text)?
    } else {
        parse_bind(text)?
    };
    if keys.is_empty() {
        return Err((1, "no key in the file".into()));
    }
    Ok(keys)
}

/// One key's fields as read, before they are checked.
#[derive(Default)]
struct Fields {
    line: usize,
    name: Option<String>,
    algorithm: Option<String>,
    secret: Option<String>,
}

impl Fields {
    fn finish(self) -> Result<Key, (usize, String)> {
        let line = self.line;
        let name = self
            .name
            .ok_or((line, "a key without a name".to_string()))?;
        let name = Name::from_ascii(&name)
            .ok()
            .filter(|n| !n.is_root())
            .ok_or((line, format!("key name {name:?} is not a DNS name")))?;
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        let algorithm = self
            .algorithm
            .ok_or((line, format!("key {name} has no algorithm")))?;
        let algorithm = match algorithm.to_ascii_lowercase().as_str() {
            "hmac-sha1" => TsigAlgorithm::HmacSha1,
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err((
                    line,
                    format!(
                        "key {name}: algorithm {other} is not supported (hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512)"
                    ),
                ));
            }
        };
        let secret = self
            .secret
            .ok_or((line, format!("key {name} has no secret")))?;
        // NB: the error must not quote the secret.
        let secret = data_encoding::BASE64
            .decode(secret.as_bytes())
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or((line, format!("key {name}: the secret is not base64")))?;
        Ok(Key {
            name,
            algorithm,
            secret,
        })
    }
}

/// A token of BIND's configuration syntax, with its line.
#[derive(Debug, PartialEq)]
enum Token<'t> {
    Word(&'t str),
    Quoted(&'t str),
    Open,
    Close,
    Semicolon,
}

/// Splits BIND syntax into tokens, dropping `#`, `//` and `/* */` comments.
fn tokens(text: &str) -> Result<Vec<(usize, Token<'_>)>, (usize, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\n' {
            line += 1;
            rest = &rest[1..];
        } else if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
        } else if c == '#' || rest.starts_with("//") {
            rest = rest.find('\n').map_or("", |at| &rest[at..]);
        } else if rest.starts_with("/*") {
            let end = rest
                .find("*/")
                .ok_or((line, "a comment that does not end".to_string()))?;
            line += rest[..end].matches('\n').count();
            rest = &rest[end + 2..];
        } else if c == '"' {
            let end = rest[1..]
                .find(['"', '\n'])
                .filter(|&at| rest.as_bytes()[1 + at] == b'"')
                .ok_or((line, "a quote that does not end on its line".to_string()))?;
            out.push((line, Token::Quoted(&rest[1..1 + end])));
            rest = &rest[end + 2..];
        } else if let Some(token) = match c {
            '{' => Some(Token::Open),
            '}' => Some(Token::Close),
            ';' => Some(Token::Semicolon),
            _ => None,
        } {
            out.push((line, token));
            rest = &rest[1..];
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || "{};\"#".contains(c))
                .unwrap_or(rest.len());
            out.push((line, Token::Word(&rest[..end])));
            rest = &rest[end..];
        }
    }
    Ok(out)
}

/// `key "NAME" { algorithm ALG; secret "BASE64"; };`, any number of times.
fn parse_bind(text: &str) -> Result<Vec<Key>, (usize, String)> {
    let tokens = tokens(text)?;
    let last_line = tokens.last().map_or(1, |(line, _)| *line);
    let mut tokens = tokens.into_iter().peekable();
    let mut keys = Vec::new();
    let unexpected = |line: usize, what: &str| Err((line, format!("expected {what}")));
    while let Some((line, token)) = tokens.next() {
        if token != Token::Word("key") {
            return unexpected(line, "`key`");
        }
        let mut fields = Fields {
            line,
            ..Fields::default()
        };
        match tokens.next() {
            Some((_, Token::Word(name) | Token::Quoted(name))) => fields.name = Some(name.into()),
            Some((line, _)) => return unexpected(line, "the key's name"),
            None => return unexpected(last_line, "the key's name"),
        }
        if !matches!(tokens.next(), Some((_, Token::Open))) {
            return unexpected(line, "`{` after the key's name");
        }
        loop {
            let (line, field) = match tokens.next() {
                Some((_, Token::Close)) => break,
                Some((line, Token::Word(field))) => (line, field),
                Some((line, _)) => return unexpected(line, "`algorithm`, `secret` or `}`"),
                None => return unexpected(last_line, "`}`"),
            };
            let value = match tokens.next() {
                Some((_, Token::Word(value) | Token::Quoted(value))) => value.to_string(),
                _ => return unexpected(line, &format!("a value after `{field}`")),
            };
            match field {
                "algorithm" => fields.algorithm = Some(value),
                "secret" => fields.secret = Some(value),
                _ => return Err((line, format!("unknown key field `{field}`"))),
            }
            if !matches!(tokens.next(), Some((_, Token::Semicolon))) {
                return unexpected(line, &format!("`;` after `{field}`"));
            }
        }
        if !matches!(tokens.next(), Some((_, Token::Semicolon))) {
            return unexpected(line, "`;` after the key's `}`");
        }
        keys.push(fields.finish()?);
    }
    Ok(keys)
}

/// Knot's YAML as `keymgr -t` writes it: `key:` then `- id:`, `algorithm:`, `secret:`.
fn parse_knot(text: &str) -> Result<Vec<Key>, (usize, String)> {
    let mut keys = Vec::new();
    let mut current: Option<Fields> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.split('#').next().unwrap_or("").trim();
        if trimmed.is_empty() || trimmed == "key:" {
            continue;
        }
        let (item, entry) = match trimmed.strip_prefix('-') {
            Some(entry) => (true, entry.trim()),
            None => (false, trimmed),
        };
        let Some((field, value)) = entry.split_once(':') else {
            return Err((line, "expected `field: value`".into()));
        };
        let value = value.trim().trim_matches('"').to_string();
        if item {
            if let Some(done) = current.take() {
                keys.push(done.finish()?);
            }
            current = Some(Fields {
                line,
                ..Fields::default()
            });
        }
        let Some(fields) = current.as_mut() else {
            return Err((line, "expected `- id:`".into()));
        };
        match field.trim() {
            "id" => fields.name = Some(value),
            "algorithm" => fields.algorithm = Some(value),
            "secret" => fields.secret = Some(value),
            other => return Err((line, format!("unknown key field `{other}`"))),
        }
    }
    if let Some(done) = current {
        keys.push(done.finish()?);
    }
    Ok(keys)
}

/// Seconds since the epoch, as TSIG counts time (RFC 8945 §4.2: 48 bits).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a request's TSIG says (with keys configured).
#[derive(Debug)]
pub enum Checked {
    /// No TSIG record (or a message too broken to find one): answered as without keys.
    Unsigned,
    /// Signed with one of our keys, MAC and time good: `request` is the request without
    /// its TSIG record (to answer as usual), `signer` signs the answer, which must fit
    /// `udp_limit` bytes over UDP, TSIG included.
    Signed {
        request: Vec<u8>,
        signer: Signer,
        udp_limit: u16,
    },
    /// The answer is already in `response`: NOTAUTH with `error` (BADKEY, BADSIG or
    /// BADTIME).
    Rejected {
        response: Vec<u8>,
        outcome: Outcome,
        error: &'static str,
    },
}

/// Checks the TSIG of `request` against `keys` at time `now` (RFC 8945 §5.2).
pub fn check(keys: &[Key], request: &[u8], now: u64) -> Checked {
    // Cheap first: most requests (EDNS alone, or nothing) end in another record.
    if !may_end_in_tsig(request) {
        return Checked::Unsigned;
    }
    let Ok(message) = Message::from_vec(request) else {
        return Checked::Unsigned; // the handler answers FORMERR
    };
    let Some(record) = message.signature.as_deref() else {
        return Checked::Unsigned;
    };
    let tsig = &record.data;
    let reject = |error, key: Option<&Key>| {
        let response = reject(&message, record, error, key, now);
        let outcome = Outcome {
            question: match &message.queries[..] {
                [query] => Some((LowerName::from(query.name()), query.query_type())),
                _ => None,
            },
            rcode: ResponseCode::NotAuth,
            authoritative: false,
            truncated: false,
            no_such_name: false,
        };
        let error = match error {
            TsigError::BadKey => "BADKEY",
            TsigError::BadTime => "BADTIME",
            _ => "BADSIG",
        };
        Checked::Rejected {
            response,
            outcome,
            error,
        }
    };
    // RFC 8945 §5.2.1: a key we do not have, or not with this algorithm: BADKEY.
    let wanted = LowerName::from(&record.name);
    let Some(key) = keys
        .iter()
        .find(|k| LowerName::from(&k.name) == wanted && k.algorithm == tsig.algorithm)
    else {
        return reject(TsigError::BadKey, None);
    };
    // RFC 8945 §5.2.2: the MAC, over the request with the TSIG variables.
    let Ok((covered, _)) = signed_bitmessage_to_buf(request, None, true) else {
        return reject(TsigError::BadSig, None);
    };
    if !verify_mac(key, &covered, &tsig.mac) {
        return reject(TsigError::BadSig, None);
    }
    // RFC 8945 §5.2.3: the time is checked after the MAC, and the BADTIME answer is
    // signed.
    if now.abs_diff(tsig.time) > u64::from(tsig.fudge) {
        return reject(TsigError::BadTime, Some(key));
    }
    // The request without its TSIG record: the covered bytes less the variables, with
    // the request's own ID (the covered header has the original ID, RFC 8945 §4.3.1).
    let mut variables = Vec::new();
    if tsig
        .emit_tsig_for_mac(&mut BinEncoder::new(&mut variables), &record.name)
        .is_err()
    {
        return reject(TsigError::BadSig, None);
    }
    let mut stripped = covered;
    stripped.truncate(stripped.len() - variables.len());
    stripped[..2].copy_from_slice(&request[..2]);
    Checked::Signed {
        request: stripped,
        signer: Signer::answering(key.clone(), tsig.mac.clone(), now),
        udp_limit: size_limit(message.edns.as_ref(), Transport::Udp),
    }
}

/// Whether the last record of `message` may be a TSIG, by walking the wire format
/// without decoding it: `false` only when it surely is not (then the full parse is
/// saved on every query while keys are configured); a malformed message says `true`,
/// and the parser decides.
fn may_end_in_tsig(message: &[u8]) -> bool {
    const TSIG: [u8; 2] = 250u16.to_be_bytes();
    let count = |at: usize| {
        message
            .get(at..at + 2)
            .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])))
    };
    let (Some(questions), Some(answers), Some(authorities), Some(additionals)) =
        (count(4), count(6), count(8), count(10))
    else {
        return true;
    };
    if additionals == 0 {
        return false;
    }
    // The end of the name at `at`: labels up to the root or a compression pointer.
    let skip_name = |mut at: usize| loop {
        let len = *message.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    };
    let mut at = 12;
    for _ in 0..questions {
        let Some(end) = skip_name(at) else {
            return true;
        };
        at = end + 4;
    }
    let mut last = [0, 0];
    for _ in 0..answers + authorities + additionals {
        let Some(end) = skip_name(at) else {
            return true;
        };
        let Some(header) = message.get(end..end + 10) else {
            return true;
        };
        last = [header[0], header[1]];
        at = end + 10 + usize::from(u16::from_be_bytes([header[8], header[9]]));
    }
    last == TSIG
}

/// The NOTAUTH answer to a request whose TSIG failed. RFC 8945 §5.3.2: unsigned (an empty
/// MAC) unless `key` is given (BADTIME, §5.2.3), then signed with our time in Other Data.
fn reject(
    request: &Message,
    record: &Record<TSIG>,
    error: TsigError,
    key: Option<&Key>,
    now: u64,
) -> Vec<u8> {
    let mut meta = Metadata::response_from_request(&request.metadata);
    meta.message_type = MessageType::Response;
    meta.response_code = ResponseCode::NotAuth;
    let mut out = Vec::new();
    let queries = match &request.queries[..] {
        [query] => std::slice::from_ref(query),
        _ => &[],
    };
    let ok = hickory_proto::op::emit_message_parts(
        &meta,
        &mut queries.iter(),
        &mut [].iter() as &mut std::slice::Iter<'_, Record>,
        &mut [].iter() as &mut std::slice::Iter<'_, Record>,
        &mut [].iter() as &mut std::slice::Iter<'_, Record>,
        None,
        None,
        &mut BinEncoder::new(&mut out),
    )
    .is_ok();
    if !ok {
        return Vec::new();
    }
    let tsig = &record.data;
    let signed = match key {
        Some(key) => {
            let mut signer = Signer::answering(key.clone(), tsig.mac.clone(), tsig.time);
            signer.error = Some(error);
            // RFC 8945 §5.2.3: Other Data is our time, 48 bits.
            signer.other = now.to_be_bytes()[2..].to_vec();
            signer.sign(&mut out)
        }
        None => {
            let unsigned = TSIG::new(
                tsig.algorithm.clone(),
                tsig.time,
                tsig.fudge,
                Vec::new(),
                tsig.oid,
                Some(error),
                Vec::new(),
            );
            append(&mut out, &record.name, unsigned)
        }
    };
    if signed { out } else { Vec::new() }
}

/// `answer` cut to its header and question with TC, for a signed UDP answer that does
/// not fit with its TSIG record: the client retries over TCP (RFC 1035 §4.2.1).
pub fn question_only(answer: &[u8]) -> Option<Vec<u8>> {
    let mut message = Message::from_vec(answer).ok()?;
    message.answers.clear();
    message.authorities.clear();
    message.additionals.clear();
    message.metadata.truncation = true;
    message.to_vec().ok()
}

/// Signs the messages of one exchange in turn (RFC 8945 §5.3.1): the first covers the
/// prior MAC (the request's, for an answer), the message and every TSIG variable; each
/// later one the previous MAC, the message and the timers only.
#[derive(Clone)]
pub struct Signer {
    key: Key,
    /// The MAC the next message's covers (the request's, then each message's own).
    prior: Option<Vec<u8>>,
    first: bool,
    time: u64,
    error: Option<TsigError>,
    other: Vec<u8>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key", &self.key)
            .field("first", &self.first)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Signs the answer to a request that carried `request_mac`.
    pub fn answering(key: Key, request_mac: Vec<u8>, time: u64) -> Signer {
        Signer {
            key,
            prior: Some(request_mac),
            first: true,
            time,
            error: None,
            other: Vec::new(),
        }
    }

    /// Signs a request we send (NOTIFY): no prior MAC.
    pub fn request(key: Key, time: u64) -> Signer {
        Signer {
            prior: None,
            ..Signer::answering(key, Vec::new(), time)
        }
    }

    /// Whether `response` (to the request this signed last) carries a TSIG record of
    /// our key whose MAC verifies (RFC 8945 §5.3: it covers our request's MAC).
    pub fn verifies(&self, response: &[u8]) -> bool {
        let Some(prior) = self.prior.as_deref() else {
            return false;
        };
        let Ok((covered, record)) = signed_bitmessage_to_buf(response, Some(prior), true) else {
            return false;
        };
        LowerName::from(&record.name) == LowerName::from(&self.key.name)
            && record.data.algorithm == self.key.algorithm
            && verify_mac(&self.key, &covered, &record.data.mac)
    }

    /// Appends the TSIG record to the encoded `message` and bumps its ARCOUNT. `false`
    /// (and the message left as it was) when it cannot be signed.
    pub fn sign(&mut self, message: &mut Vec<u8>) -> bool {
        let Some(id) = message
            .get(..2)
            .map(|id| u16::from_be_bytes([id[0], id[1]]))
        else {
            return false;
        };
        let mut covered = Vec::with_capacity(message.len() + 128);
        if let Some(prior) = &self.prior {
            // The MAC's length, then the MAC.
            let Ok(len) = u16::try_from(prior.len()) else {
                return false;
            };
            covered.extend_from_slice(&len.to_be_bytes());
            covered.extend_from_slice(prior);
        }
        covered.extend_from_slice(message);
        let variables = TSIG::new(
            self.key.algorithm.clone(),
            self.time,
            FUDGE,
            Vec::new(),
            id,
            self.error,
            self.other.clone(),
        );
        if self.first {
            // NB: a BinEncoder writes from the start of its buffer, not at its end.
            let mut bytes = Vec::new();
            if variables
                .emit_tsig_for_mac(&mut BinEncoder::new(&mut bytes), &self.key.name)
                .is_err()
            {
                return false;
            }
            covered.extend_from_slice(&bytes);
        } else {
            // RFC 8945 §5.3.1: later messages cover the timers only.
            covered.extend_from_slice(&self.time.to_be_bytes()[2..]);
            covered.extend_from_slice(&FUDGE.to_be_bytes());
        }
        let Some(mac) = mac_data(&self.key, &covered) else {
            return false;
        };
        if !append(message, &self.key.name, variables.set_mac(mac.clone())) {
            return false;
        }
        self.prior = Some(mac);
        self.first = false;
        true
    }
}

/// The MAC of `data` with `key`: hickory-proto's for the SHA-2 family, ring's own for
/// hmac-sha1 (which hickory-proto leaves out; RFC 8945 §6 still requires it, for old
/// secondaries).
fn mac_data(key: &Key, data: &[u8]) -> Option<Vec<u8>> {
    match key.algorithm {
        TsigAlgorithm::HmacSha1 => {
            let ring_key =
                ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key.secret);
            Some(ring::hmac::sign(&ring_key, data).as_ref().to_vec())
        }
        _ => key.algorithm.mac_data(&key.secret, data).ok(),
    }
}

/// Whether `tag` is the MAC of `data` with `key`, compared in constant time (ring).
fn verify_mac(key: &Key, data: &[u8], tag: &[u8]) -> bool {
    match key.algorithm {
        TsigAlgorithm::HmacSha1 => {
            let ring_key =
                ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key.secret);
            ring::hmac::verify(&ring_key, data, tag).is_ok()
        }
        _ => key.algorithm.verify_mac(&key.secret, data, tag).is_ok(),
    }
}

/// Appends a TSIG record (class ANY, TTL 0, RFC 8945 §4.2; names uncompressed) to an
/// encoded message and counts it in ARCOUNT.
fn append(message: &mut Vec<u8>, key_name: &Name, tsig: TSIG) -> bool {
    let Some(count) = message
        .get(10..12)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
    else {
        return false;
    };
    let Some(count) = count.checked_add(1) else {
        return false;
    };
    let mut record = Record::from_rdata(key_name.clone(), 0, RData::TSIG(tsig));
    record.dns_class = DNSClass::ANY;
    let mut bytes = Vec::new();
    {
        let mut encoder = BinEncoder::new(&mut bytes);
        let mut encoder = encoder.with_name_encoding(NameEncoding::Uncompressed);
        if record.emit(&mut encoder).is_err() {
            return false;
        }
    }
    message.extend_from_slice(&bytes);
    message[10..12].copy_from_slice(&count.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{OpCode, Query};
    use hickory_proto::rr::RecordType;

    use super::*;

    const SECRET: &str = "FKmLyY1iQuqjny8OLRzvNyvuX9UiDA/y7XT3p1Bvuns=";

    #[test]
    fn reads_bind_and_knot_key_files() {
        // tsig-keygen's output, two keys, comments.
        let bind = format!(
            "# a comment\nkey \"Transfer.Key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n// another\nkey other {{ algorithm hmac-sha512; secret \"{SECRET}\"; }};\n"
        );
        let keys = parse(&bind).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].name, Name::from_ascii("transfer.key.").unwrap());
        assert_eq!(keys[0].algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(keys[1].algorithm, TsigAlgorithm::HmacSha512);
        // keymgr -t's output.
        let knot = format!(
            "# hmac-sha256:mykey:{SECRET}\nkey:\n  - id: mykey\n    algorithm: hmac-sha256\n    secret: {SECRET}\n"
        );
        let keys = parse(&knot).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].name, Name::from_ascii("mykey.").unwrap());
    }

    #[test]
    fn a_bad_file_says_which_line_and_never_the_secret() {
        // (text, line of the error)
        let cases = [
            (
                "key k { algorithm hmac-sha256; secret \"!!notbase64\"; };",
                1,
            ),
            ("key k {\n algorithm hmac-md5;\n secret \"AAAA\";\n};", 1),
            ("key k {\n algorithm hmac-sha256\n secret \"AAAA\";\n};", 2),
            ("\n\nnot-a-key;", 3),
            ("key k { secret \"AAAA\"; };", 1),
            ("", 1),
        ];
        for (text, line) in cases {
            let (at, reason) = parse(text).unwrap_err();
            assert_eq!(at, line, "{text:?}: {reason}");
            assert!(!reason.contains("notbase64"), "{reason}");
        }
        let key = &parse(&format!(
            "key k {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};"
        ))
        .unwrap()[0];
        assert!(!format!("{key:?}").contains(SECRET));
        assert!(!format!("{key:?}").contains("FKmL"));
    }

    pub(super) fn key() -> Key {
        parse(&format!(
            "key k {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};"
        ))
        .unwrap()[0]
            .clone()
    }

    fn signed_request(key: &Key, time: u64) -> Vec<u8> {
        let mut message = Message::new(7, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(
            Name::from_ascii("home.example.").unwrap(),
            RecordType::SOA,
        ));
        let mut bytes = message.to_vec().unwrap();
        assert!(Signer::request(key.clone(), time).sign(&mut bytes));
        bytes
    }

    #[test]
    fn a_request_we_sign_checks_and_a_changed_one_does_not() {
        let key = key();
        let request = signed_request(&key, 1_000_000);
        let Checked::Signed { request: plain, .. } =
            check(std::slice::from_ref(&key), &request, 1_000_100)
        else {
            panic!("our own signature checks");
        };
        let plain = Message::from_vec(&plain).unwrap();
        assert!(plain.signature.is_none());
        assert_eq!(plain.metadata.id, 7);
        // RFC 8945 §5.2.2: one flipped byte of the question: BADSIG, unsigned.
        let mut changed = request.clone();
        changed[14] ^= 0x20;
        let Checked::Rejected { response, .. } =
            check(std::slice::from_ref(&key), &changed, 1_000_100)
        else {
            panic!("a changed message fails");
        };
        let answer = Message::from_vec(&response).unwrap();
        let tsig = answer.signature.unwrap();
        assert_eq!(tsig.data.error, Some(TsigError::BadSig));
        assert!(tsig.data.mac.is_empty());
        // RFC 8945 §5.2.3: outside the fudge: BADTIME, signed, our time in Other Data.
        let Checked::Rejected { response, .. } = check(&[key], &request, 1_000_301) else {
            panic!("a stale request fails");
        };
        let answer = Message::from_vec(&response).unwrap();
        assert_eq!(answer.metadata.response_code, ResponseCode::NotAuth);
        let tsig = answer.signature.unwrap();
        assert_eq!(tsig.data.error, Some(TsigError::BadTime));
        assert_eq!(tsig.data.mac.len(), 32);
        assert_eq!(tsig.data.other, 1_000_301u64.to_be_bytes()[2..]);
    }

    #[test]
    fn only_a_message_ending_in_tsig_is_parsed() {
        let key = key();
        let mut query = Message::new(7, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(
            Name::from_ascii("home.example.").unwrap(),
            RecordType::SOA,
        ));
        assert!(!may_end_in_tsig(&query.to_vec().unwrap()));
        query.set_edns(hickory_proto::op::Edns::new());
        let with_edns = query.to_vec().unwrap();
        assert!(!may_end_in_tsig(&with_edns));
        let mut signed = with_edns.clone();
        assert!(Signer::request(key, 1).sign(&mut signed));
        assert!(may_end_in_tsig(&signed));
        // Cut short: not ours to judge.
        assert!(may_end_in_tsig(&signed[..20]));
    }

    #[test]
    fn our_request_signer_verifies_the_signed_reply_only() {
        let key = key();
        let mut request = Message::new(9, MessageType::Query, OpCode::Notify)
            .to_vec()
            .unwrap();
        let mut ours = Signer::request(key.clone(), 1_000);
        assert!(ours.sign(&mut request));
        let Checked::Signed { mut signer, .. } = check(std::slice::from_ref(&key), &request, 1_000)
        else {
            panic!("signed");
        };
        let reply = Message::new(9, MessageType::Response, OpCode::Notify)
            .to_vec()
            .unwrap();
        let mut signed = reply.clone();
        assert!(signer.sign(&mut signed));
        assert!(ours.verifies(&signed));
        assert!(!ours.verifies(&reply), "unsigned");
        signed[2] ^= 0x04; // AA flipped
        assert!(!ours.verifies(&signed), "changed");
    }

    #[test]
    fn a_stream_of_answers_verifies_as_a_chain() {
        let key = key();
        let request = signed_request(&key, 5_000);
        let Checked::Signed { mut signer, .. } = check(std::slice::from_ref(&key), &request, 5_000)
        else {
            panic!("signed");
        };
        let request_mac = Message::from_vec(&request)
            .unwrap()
            .signature
            .unwrap()
            .data
            .mac;
        let mut previous = request_mac;
        for index in 0..3 {
            let mut message = Message::new(7, MessageType::Response, OpCode::Query)
                .to_vec()
                .unwrap();
            assert!(signer.sign(&mut message));
            // hickory-proto's own reading of §5.3.1 agrees with ours.
            let (covered, record) =
                signed_bitmessage_to_buf(&message, Some(&previous), index == 0).unwrap();
            key.algorithm
                .verify_mac(&key.secret, &covered, &record.data.mac)
                .unwrap();
            previous = record.data.mac.clone();
        }
    }
}
