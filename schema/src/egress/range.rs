//! The special-purpose address table: every range a probe may not reach unless an operator
//! allow-lists it, from the IANA IPv4 and IPv6 Special-Purpose Address Registries, plus what
//! the IPv6 Address Space registry leaves outside global unicast (`2000::/3`).
//!
//! Rows are matched in order and the first match decides, so a narrower row (the cloud metadata
//! address, the globally reachable assignments inside `2001::/23`) comes before the range that
//! contains it. An address no row matches is public.
//!
//! IPv6 ranges that carry an IPv4 address are judged by that address: IPv4-mapped
//! (`::ffff:0:0/96`), the well-known NAT64 prefix (`64:ff9b::/96`) and 6to4 (`2002::/16`). The
//! local-use NAT64 prefix (`64:ff9b:1::/48`) is blocked outright: where its IPv4 address sits
//! depends on the operator's prefix length, and it is not globally reachable anyway.
//!
//! Inside `2001::/23` (IETF protocol assignments) the globally reachable service assignments are
//! public: the PCP, TURN and DNS-SD SRP anycast addresses (`2001:1::1`–`2001:1::3`), AMT
//! (`2001:3::/32`) and AS112-v6 (`2001:4:112::/48`). Everything else there (Teredo, benchmarking,
//! ORCHID identifiers, …) is blocked.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use Special::*;
use Verdict::{Block, EmbeddedV4, Public};

/// A network in CIDR notation (`10.0.0.0/8`, `fe80::/10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address (host bits zero).
    pub addr: IpAddr,
    /// Prefix length: 0–32 for IPv4, 0–128 for IPv6.
    pub len: u8,
}

impl Cidr {
    /// `addr/len`; `None` when the length is too long for the family or host bits are set.
    pub fn new(addr: IpAddr, len: u8) -> Option<Self> {
        let cidr = Self { addr, len };
        let valid = match addr {
            IpAddr::V4(a) => len <= 32 && u32::from(a) & !mask_v4(len) == 0,
            IpAddr::V6(a) => len <= 128 && u128::from(a) & !mask_v6(len) == 0,
        };
        valid.then_some(cidr)
    }

    /// The single address `addr` (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Self {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }

    /// Whether `ip` is in the network (an IPv4 address is never in an IPv6 network, nor the
    /// reverse).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.len);
                u32::from(ip) & mask == u32::from(net) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.len);
                u128::from(ip) & mask == u128::from(net) & mask
            }
            _ => false,
        }
    }

    /// Whether the network is a single address.
    pub fn is_host(&self) -> bool {
        self.len == if self.addr.is_ipv4() { 32 } else { 128 }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn mask_v4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask_v6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

/// The kind of a non-public range; its [`label`](Special::label) is the `reason` label of the
/// probe runner's blocked-probe counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    /// `0.0.0.0/8`: "this network".
    ThisNetwork,
    /// RFC 1918 private networks.
    Private,
    /// `100.64.0.0/10`: shared address space (carrier-grade NAT).
    SharedAddressSpace,
    /// Loopback, including `localhost` names.
    Loopback,
    /// The cloud instance metadata endpoints (`169.254.169.254`, `fd00:ec2::254`).
    Metadata,
    /// Link-local unicast.
    LinkLocal,
    /// IETF protocol assignments (`192.0.0.0/24`, `2001::/23`).
    IetfProtocol,
    /// Documentation examples (TEST-NET-1/2/3, `2001:db8::/32`, `3fff::/20`).
    Documentation,
    /// `192.88.99.0/24`: the deprecated 6to4 relay anycast.
    RelayAnycast,
    /// Benchmarking (`198.18.0.0/15`, `2001:2::/48`).
    Benchmarking,
    /// Multicast.
    Multicast,
    /// Reserved for future use, or outside IPv6 global unicast.
    Reserved,
    /// `255.255.255.255`.
    Broadcast,
    /// `::`.
    Unspecified,
    /// `100::/64`: discard-only.
    DiscardOnly,
    /// `64:ff9b:1::/48`: local-use NAT64.
    LocalNat64,
    /// `fc00::/7`: unique local addresses.
    UniqueLocal,
}

impl Special {
    /// A short stable name (`loopback`, `private`, `metadata`, …).
    pub const fn label(self) -> &'static str {
        match self {
            Special::ThisNetwork => "this_network",
            Special::Private => "private",
            Special::SharedAddressSpace => "shared_address_space",
            Special::Loopback => "loopback",
            Special::Metadata => "metadata",
            Special::LinkLocal => "link_local",
            Special::IetfProtocol => "ietf_protocol",
            Special::Documentation => "documentation",
            Special::RelayAnycast => "relay_anycast",
            Special::Benchmarking => "benchmarking",
            Special::Multicast => "multicast",
            Special::Reserved => "reserved",
            Special::Broadcast => "broadcast",
            Special::Unspecified => "unspecified",
            Special::DiscardOnly => "discard_only",
            Special::LocalNat64 => "local_nat64",
            Special::UniqueLocal => "unique_local",
        }
    }

    /// What the range is, for messages ("a loopback address").
    pub const fn describe(self) -> &'static str {
        match self {
            Special::ThisNetwork => "a \"this network\" address",
            Special::Private => "a private address",
            Special::SharedAddressSpace => "a shared (carrier-grade NAT) address",
            Special::Loopback => "a loopback address",
            Special::Metadata => "the cloud metadata address",
            Special::LinkLocal => "a link-local address",
            Special::IetfProtocol => "an IETF protocol assignment",
            Special::Documentation => "a documentation address",
            Special::RelayAnycast => "the deprecated 6to4 relay anycast",
            Special::Benchmarking => "a benchmarking address",
            Special::Multicast => "a multicast address",
            Special::Reserved => "a reserved address",
            Special::Broadcast => "the broadcast address",
            Special::Unspecified => "the unspecified address",
            Special::DiscardOnly => "a discard-only address",
            Special::LocalNat64 => "a local-use NAT64 address",
            Special::UniqueLocal => "a unique local address",
        }
    }
}

/// What a row says about the addresses it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not public.
    Block(Special),
    /// Public: a globally reachable assignment inside a blocked range.
    Public,
    /// Judged by the IPv4 address it carries, in bits `at..at + 32` (from the most significant).
    EmbeddedV4 {
        /// Bit offset of the IPv4 address.
        at: u8,
    },
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The range.
    pub range: Cidr,
    /// What it means.
    pub verdict: Verdict,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, kind: Special) -> Row {
    Row {
        range: Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            len,
        },
        verdict: Verdict::Block(kind),
    }
}

const fn v6(segments: [u16; 8], len: u8, verdict: Verdict) -> Row {
    let [a, b, c, d, e, f, g, h] = segments;
    Row {
        range: Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            len,
        },
        verdict,
    }
}

/// The IPv4 table.
pub const IPV4: [Row; 17] = [
    v4(0, 0, 0, 0, 8, ThisNetwork),
    v4(10, 0, 0, 0, 8, Private),
    v4(100, 64, 0, 0, 10, SharedAddressSpace),
    v4(127, 0, 0, 0, 8, Loopback),
    v4(169, 254, 169, 254, 32, Metadata),
    v4(169, 254, 0, 0, 16, LinkLocal),
    v4(172, 16, 0, 0, 12, Private),
    v4(192, 0, 0, 0, 24, IetfProtocol),
    v4(192, 0, 2, 0, 24, Documentation),
    v4(192, 88, 99, 0, 24, RelayAnycast),
    v4(192, 168, 0, 0, 16, Private),
    v4(198, 18, 0, 0, 15, Benchmarking),
    v4(198, 51, 100, 0, 24, Documentation),
    v4(203, 0, 113, 0, 24, Documentation),
    v4(224, 0, 0, 0, 4, Multicast),
    v4(255, 255, 255, 255, 32, Broadcast),
    v4(240, 0, 0, 0, 4, Reserved),
];

/// The IPv6 table. The last three rows cover everything outside global unicast `2000::/3`
/// that the rows before them did not decide.
pub const IPV6: [Row; 26] = [
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, Block(Unspecified)),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, Block(Loopback)),
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, EmbeddedV4 { at: 96 }),
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, EmbeddedV4 { at: 96 }),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Block(LocalNat64)),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Block(DiscardOnly)),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, Public),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, Public),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, Public),
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, Public),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, Public),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, Block(Benchmarking)),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Block(IetfProtocol)),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Block(Documentation)),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, EmbeddedV4 { at: 16 }),
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Block(Documentation)),
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, Block(Reserved)),
    v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128, Block(Metadata)),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Block(UniqueLocal)),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Block(LinkLocal)),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Block(Reserved)),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Block(Multicast)),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 3, Block(Reserved)),
    v6([0x4000, 0, 0, 0, 0, 0, 0, 0], 2, Block(Reserved)),
    v6([0x8000, 0, 0, 0, 0, 0, 0, 0], 1, Block(Reserved)),
    v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, Public),
];

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonPublic {
    /// The kind of range.
    pub kind: Special,
    /// The range that matched (for an embedded IPv4 address, the IPv4 range).
    pub range: Cidr,
    /// For an IPv6 address carrying an IPv4 one: the carrying range and the IPv4 address.
    pub via: Option<(Cidr, Ipv4Addr)>,
}

impl fmt::Display for NonPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind.describe(), self.range)?;
        if let Some((carrier, v4)) = self.via {
            write!(f, ", embedded as {v4} in {carrier}")?;
        }
        Ok(())
    }
}

/// Why `ip` is not public, or `None` when it is.
pub fn classify(ip: IpAddr) -> Option<NonPublic> {
    let table: &[Row] = match ip {
        IpAddr::V4(_) => &IPV4,
        IpAddr::V6(_) => &IPV6,
    };
    let row = table.iter().find(|row| row.range.contains(ip))?;
    match (row.verdict, ip) {
        (Verdict::Block(kind), _) => Some(NonPublic {
            kind,
            range: row.range,
            via: None,
        }),
        (Verdict::Public, _) => None,
        (Verdict::EmbeddedV4 { at }, IpAddr::V6(v6)) => {
            let bits = u128::from(v6) >> (96 - u32::from(at).min(96));
            let embedded = Ipv4Addr::from(bits as u32);
            classify(IpAddr::V4(embedded)).map(|inner| NonPublic {
                via: Some((row.range, embedded)),
                ..inner
            })
        }
        (Verdict::EmbeddedV4 { .. }, IpAddr::V4(_)) => None,
    }
}
