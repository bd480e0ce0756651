//! The host and port a URL names, read the way the probe runner's URL parser (WHATWG URL) reads
//! them, so write-time validation sees the address a probe would: percent-decoded, lowercased,
//! and IPv4 in any of its legacy spellings (`2130706433`, `0x7f.1`, `127.1`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::event::{CheckKind, DnsQuery, IcmpTarget};

/// A URL's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    /// An IP address.
    Ip(IpAddr),
    /// A domain name, lowercased, without a trailing dot.
    Name(String),
    /// A host that holds a `${…}` reference, known only at probe time, or the system's DNS
    /// resolver (configured by the operator, not the monitor).
    Deferred,
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: Host,
    /// The explicit port, else the scheme's default.
    pub(crate) port: u16,
}

/// The target of a monitor URL of any kind (see [`CheckKind`]); `Err` for what no probe could
/// connect to. A `dns://` URL's target is its resolver (the system's: [`Host::Deferred`]).
pub(crate) fn target(url: &str) -> Result<Target, String> {
    let (kind, scheme, default_port) = CheckKind::of(url)?;
    if kind == CheckKind::Dns {
        let query = DnsQuery::parse(url)?;
        let Some(resolver) = query.resolver else {
            return Ok(Target {
                host: Host::Deferred,
                port: query.port,
            });
        };
        let host = match resolver.parse::<Ipv6Addr>() {
            Ok(ip) => Host::Ip(IpAddr::V6(ip)),
            Err(_) => name_or_ipv4(&resolver)?,
        };
        return Ok(Target {
            host,
            port: query.port,
        });
    }
    if kind == CheckKind::Icmp {
        // No port: an allow-list entry covers ICMP only when it names no port.
        let target = IcmpTarget::parse(url)?;
        let host = match target.host.parse::<Ipv6Addr>() {
            Ok(ip) => Host::Ip(IpAddr::V6(ip)),
            Err(_) => name_or_ipv4(&target.host)?,
        };
        return Ok(Target { host, port: 0 });
    }
    let rest = &url[scheme.len() + 3..];
    let default_port = default_port.unwrap_or(0);
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or_else(|| "has an unclosed [ in its host".to_owned())?;
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("has an invalid IPv6 host [{inside}]"))?;
        (Host::Ip(IpAddr::V6(ip)), after.strip_prefix(':'))
    } else {
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        (name_or_ipv4(host)?, port)
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) if p.contains("${") => default_port,
        Some(p) => p
            .parse()
            .map_err(|_| format!("has an invalid port {p:?}"))?,
    };
    Ok(Target { host, port })
}

fn name_or_ipv4(raw: &str) -> Result<Host, String> {
    if raw.contains("${") {
        return Ok(Host::Deferred);
    }
    let decoded = percent_decode(raw).to_ascii_lowercase();
    let name = decoded.strip_suffix('.').unwrap_or(&decoded);
    if name.is_empty() {
        return Err("has no host".into());
    }
    let last = name.rsplit('.').next().unwrap_or_default();
    if ends_in_number(last) {
        return ipv4(name)
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .ok_or_else(|| format!("has an invalid IPv4 host {raw:?}"));
    }
    Ok(Host::Name(name.to_owned()))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// WHATWG "ends in a number": the last label is decimal digits or `0x` hex.
fn ends_in_number(label: &str) -> bool {
    if !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    label
        .strip_prefix("0x")
        .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The WHATWG IPv4 parser: 1–4 parts, each decimal, `0x` hex or `0` octal, the last filling the
/// remaining bytes.
fn ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts.iter().map(|p| number(p)).collect::<Option<_>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|&n| n > 255) {
        return None;
    }
    let room = 4 - u32::try_from(init.len()).ok()?;
    if *last >= 256u64.pow(room) {
        return None;
    }
    let mut value = *last;
    for (i, n) in init.iter().enumerate() {
        value += n << (8 * (3 - i));
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(url: &str) -> IpAddr {
        match target(url).unwrap().host {
            Host::Ip(ip) => ip,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn reads_hosts_like_the_url_parser() {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1:8123/",
            "HTTP://127.0.0.1./x",
            "http://user:pw@127.0.0.1:80/",
            "http://127%2E0%2E0%2E1/",
        ] {
            assert_eq!(ip(url), loopback, "{url}");
        }
        assert_eq!(ip("http://[::1]:8123/"), "::1".parse::<IpAddr>().unwrap());
        let t = target("https://API.Example.com./v1").unwrap();
        assert_eq!(t.host, Host::Name("api.example.com".into()));
        assert_eq!(t.port, 443);
        assert_eq!(target("http://h:8090").unwrap().port, 8090);
        assert_eq!(target("http://${HOST}/").unwrap().host, Host::Deferred);
        assert!(target("http://256.256.256.256/").is_err());
        assert!(target("ftp://x/").is_err());
        assert!(target("http://[::1/").is_err());
    }
}
