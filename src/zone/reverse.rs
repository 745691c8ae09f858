//! Reverse zones: the `in-addr.arpa` / `ip6.arpa` domains of address ranges, with a PTR
//! for every address the forward domains serve inside them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::{LowerName, Name};

/// An address range on a label boundary of the reverse tree (IPv4 octets, IPv6 nibbles),
/// so that it is exactly one `in-addr.arpa`/`ip6.arpa` domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReverseZone {
    network: IpAddr,
    prefix: u8,
}

impl ReverseZone {
    /// The domain of this range: `10.168.192.in-addr.arpa.` for `192.168.10.0/24`.
    pub fn origin(&self) -> Name {
        // RFC 1035 §3.5 (in-addr.arpa: one label per octet) and RFC 3596 §2.5
        // (ip6.arpa: one label per nibble), most significant last.
        let labels: Vec<String> = match self.network {
            IpAddr::V4(v4) => v4
                .octets()
                .iter()
                .take(usize::from(self.prefix / 8))
                .rev()
                .map(u8::to_string)
                .chain(["in-addr".into(), "arpa".into()])
                .collect(),
            IpAddr::V6(v6) => v6
                .octets()
                .iter()
                .flat_map(|b| [b >> 4, b & 0x0f])
                .take(usize::from(self.prefix / 4))
                .collect::<Vec<u8>>()
                .into_iter()
                .rev()
                .map(|n| format!("{n:x}"))
                .chain(["ip6".into(), "arpa".into()])
                .collect(),
        };
        // NB: every label is a decimal octet, a hex nibble or fixed: always a valid name.
        Name::from_labels(labels.iter().map(String::as_bytes)).unwrap_or_else(|_| Name::root())
    }

    /// Whether `ip` lies in this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Any address range (`192.168.1.0/24`, `::1/128`, a bare address for one host): for
/// allow-lists such as `--transfer-allow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    /// Whether `ip` lies in this range. An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`, as a
    /// dual-stack socket reports IPv4 clients) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ReverseZone {
            network: self.network,
            prefix: self.prefix,
        }
        .contains(ip)
    }
}

impl FromStr for AddressRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an address or CIDR (like 192.168.1.0/24)"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = if prefix.is_empty() {
            bits
        } else {
            prefix
                .parse()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text}: the prefix must be 0 to {bits}"))?
        };
        Ok(AddressRange { network, prefix })
    }
}

/// The owner name of the PTR for `ip` (`40.10.168.192.in-addr.arpa.`).
pub fn ptr_name(ip: IpAddr) -> LowerName {
    LowerName::from(Name::from(ip))
}

/// Whether a name the zone does not have may be asked upstream (`--fallthrough`): a
/// name of a `--domain` may, a name of a reverse zone (`in-addr.arpa`, `ip6.arpa`) may
/// not. Those hold the LAN's own addresses: a miss there is ours to answer, and the
/// public resolvers have nothing better to say about private addresses (RFC 6761 §6.1
/// asks them to answer NXDOMAIN without asking anyone).
pub fn may_fall_through(name: &LowerName) -> bool {
    static ARPA: std::sync::OnceLock<LowerName> = std::sync::OnceLock::new();
    let arpa =
        ARPA.get_or_init(|| LowerName::from(Name::from_labels([&b"arpa"[..]]).unwrap_or_default()));
    !arpa.zone_of(name)
}

impl FromStr for ReverseZone {
    type Err = String;

    /// `ADDR/PREFIX`, the prefix a multiple of 8 (IPv4) or 4 (IPv6) and the address
    /// without host bits, so that the range is one domain of the reverse tree.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a CIDR (like 192.168.10.0/24)"))?;
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{address:?} is not an IP address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("{prefix:?} is not a prefix length"))?;
        let (bits, step, unit) = match network {
            IpAddr::V4(_) => (32, 8, "octet"),
            IpAddr::V6(_) => (128, 4, "nibble"),
        };
        if prefix == 0 || prefix > bits || !prefix.is_multiple_of(step) {
            return Err(format!(
                "{text}: the prefix must be a multiple of {step} from {step} to {bits} (an {unit} boundary), as a reverse zone is one domain per {unit}"
            ));
        }
        let zone = ReverseZone { network, prefix };
        let masked = match network {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        };
        if masked != network {
            return Err(format!(
                "{text} has host bits set (the range is {masked}/{prefix})"
            ));
        }
        Ok(zone)
    }
}

impl fmt::Display for ReverseZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_on_label_boundaries_become_one_domain() {
        // (range, its reverse domain)
        let cases = [
            ("192.168.10.0/24", "10.168.192.in-addr.arpa."),
            ("10.0.0.0/8", "10.in-addr.arpa."),
            ("192.168.10.40/32", "40.10.168.192.in-addr.arpa."),
            ("fd00:1234::/32", "4.3.2.1.0.0.d.f.ip6.arpa."),
            ("fd00::/12", "0.d.f.ip6.arpa."),
        ];
        for (text, origin) in cases {
            let zone: ReverseZone = text.parse().unwrap();
            assert_eq!(zone.origin().to_string(), origin, "{text}");
        }
    }

    #[test]
    fn off_boundary_or_host_bits_are_refused() {
        // (input, what the error mentions)
        let cases = [
            ("192.168.10.0/23", "multiple of 8"),
            ("fd00::/30", "multiple of 4"),
            ("192.168.10.5/24", "host bits"),
            ("192.168.10.0", "not a CIDR"),
            ("192.168.10.0/0", "multiple of 8"),
            ("192.168.10.0/40", "multiple of 8"),
            ("web/24", "not an IP address"),
        ];
        for (text, mention) in cases {
            let err = text.parse::<ReverseZone>().unwrap_err();
            assert!(err.contains(mention), "{text}: {err}");
        }
    }

    #[test]
    fn address_ranges_for_allow_lists() {
        let range: AddressRange = "192.168.1.0/24".parse().unwrap();
        assert!(range.contains("192.168.1.7".parse().unwrap()));
        assert!(range.contains("::ffff:192.168.1.7".parse().unwrap()));
        assert!(!range.contains("192.168.2.7".parse().unwrap()));
        let host: AddressRange = "127.0.0.1".parse().unwrap();
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let any: AddressRange = "::/0".parse().unwrap();
        assert!(any.contains("fd00::1".parse().unwrap()));
        for bad in ["pihole.lan", "10.0.0.0/33", "::/129", "10.0.0.0/x"] {
            assert!(bad.parse::<AddressRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn contains_and_ptr_names() {
        let zone: ReverseZone = "192.168.10.0/24".parse().unwrap();
        assert!(zone.contains("192.168.10.40".parse().unwrap()));
        assert!(!zone.contains("192.168.11.40".parse().unwrap()));
        assert!(!zone.contains("fd00::1".parse().unwrap()));
        let ptr = ptr_name("192.168.10.40".parse().unwrap());
        assert_eq!(ptr.to_string(), "40.10.168.192.in-addr.arpa.");
        assert!(LowerName::from(zone.origin()).zone_of(&ptr));
        let v6: ReverseZone = "fd00::/8".parse().unwrap();
        assert!(LowerName::from(v6.origin()).zone_of(&ptr_name("fd00::10".parse().unwrap())));
    }

    #[test]
    fn reverse_zone_names_never_fall_through() {
        let name = |text: &str| LowerName::from(Name::from_ascii(text).unwrap());
        assert!(may_fall_through(&name("blog.home.example.")));
        assert!(!may_fall_through(&name("41.10.168.192.in-addr.arpa.")));
        assert!(!may_fall_through(&name("0.0.d.f.ip6.arpa.")));
    }
}
