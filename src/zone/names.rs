//! Host names and addresses as objects and options write them: checked once, the same
//! way for every kind and for `--domain`.

use std::net::IpAddr;

use hickory_proto::rr::Name;

/// Longest presentation-form name (RFC 1035 §2.3.4, less the root's dot).
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// Parses a host name from an object: letters, digits, `-` and `_` (underscore names
/// such as `_acme-challenge` carry TXT records), labels of 1 to 63 characters, at most
/// 253 in all, one trailing dot allowed. With `allow_wildcard`, the first label may be
/// `*`. Returns a relative name unless the text ended with a dot; the builder decides
/// where it goes.
pub fn parse_hostname(text: &str, allow_wildcard: bool) -> Result<Name, String> {
    let trimmed = text.trim();
    let (body, absolute) = match trimmed.strip_suffix('.') {
        Some(body) => (body, true),
        None => (trimmed, false),
    };
    if body.is_empty() {
        return Err(format!("{text:?} is not a host name: it is empty"));
    }
    if body.len() > MAX_NAME {
        return Err(format!(
            "{text:?} is not a host name: longer than {MAX_NAME} characters"
        ));
    }
    for (index, label) in body.split('.').enumerate() {
        if label == "*" && index == 0 && allow_wildcard {
            continue;
        }
        if label.is_empty() || label.len() > MAX_LABEL {
            return Err(format!(
                "{text:?} is not a host name: labels must have 1 to {MAX_LABEL} characters"
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "{text:?} is not a host name: {bad:?} is not allowed"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "{text:?} is not a host name: a label starts or ends with '-'"
            ));
        }
    }
    let mut name =
        Name::from_ascii(body).map_err(|e| format!("{text:?} is not a host name: {e}"))?;
    name.set_fqdn(absolute);
    Ok(name)
}

/// [`parse_hostname`], made fully qualified: how a kind reads a name that is either
/// under one of our domains or not ours at all (Ingress hosts, route hostnames,
/// load-balancer hostnames, CNAME targets).
pub fn parse_absolute(text: &str, allow_wildcard: bool) -> Result<Name, String> {
    let mut name = parse_hostname(text, allow_wildcard)?;
    name.set_fqdn(true);
    Ok(name)
}

/// Parses an IPv4 or IPv6 address, naming the value when it is not one.
pub fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address"))
}

/// Whether `text` is an IP address rather than a name (Istio hosts may be either).
pub fn is_ip(text: &str) -> bool {
    text.parse::<IpAddr>().is_ok()
}

/// The hostnames a route hostname and a listener hostname have in common, as the more
/// specific of the two, or `None`. `*.example.com` matches one or more labels before
/// `example.com` (Gateway API), never `example.com` itself.
pub fn intersect(route: &Name, listener: &Name) -> Option<Name> {
    if route.eq_ignore_root(listener) {
        return Some(route.clone());
    }
    if covers(listener, route) {
        return Some(route.clone());
    }
    if covers(route, listener) {
        return Some(listener.clone());
    }
    None
}

/// Whether the wildcard `pattern` (`*.suffix`) covers `name`: `name` is strictly below
/// `suffix`. A wildcard `name` is covered when its own suffix is below.
fn covers(pattern: &Name, name: &Name) -> bool {
    if !pattern.is_wildcard() {
        return false;
    }
    let suffix = pattern.base_name();
    let name = if name.is_wildcard() {
        name.base_name()
    } else {
        name.clone()
    };
    name.num_labels() > suffix.num_labels() && suffix.zone_of(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_names_as_objects_write_them() {
        // (input, wildcard allowed, expected presentation form)
        let cases = [
            ("web.home.example", false, "web.home.example"),
            ("Web.Home.Example.", false, "Web.Home.Example."),
            (
                "_acme-challenge.home.example",
                false,
                "_acme-challenge.home.example",
            ),
            ("*.apps.home.example", true, "*.apps.home.example"),
            ("  spaced.home.example ", false, "spaced.home.example"),
        ];
        for (input, wildcard, expected) in cases {
            assert_eq!(
                parse_hostname(input, wildcard).unwrap().to_string(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_host_name() {
        let long_label = format!("{}.home.example", "a".repeat(64));
        let long_name = format!("{}home.example", "abcdefghi.".repeat(25));
        // (input, wildcard allowed, what the message must mention)
        let cases = [
            ("", false, "empty"),
            ("bad name.home.example", false, "' '"),
            ("a..b", false, "labels"),
            ("-web.home.example", false, "'-'"),
            ("*.apps.home.example", false, "'*'"),
            ("web.*.home.example", true, "'*'"),
            (long_label.as_str(), false, "labels"),
            (long_name.as_str(), false, "longer"),
            ("web/path.home.example", false, "'/'"),
        ];
        for (input, wildcard, mention) in cases {
            let err = parse_hostname(input, wildcard).unwrap_err();
            assert!(err.contains(mention), "{input}: {err}");
        }
    }

    #[test]
    fn parses_addresses_of_both_families() {
        assert!(parse_ip("192.168.1.10").unwrap().is_ipv4());
        assert!(parse_ip("fd00::10").unwrap().is_ipv6());
        assert!(
            parse_ip("192.168.1.300")
                .unwrap_err()
                .contains("192.168.1.300")
        );
        assert!(is_ip("::1") && !is_ip("web.home.example"));
    }
}
