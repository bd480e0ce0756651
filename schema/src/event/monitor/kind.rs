//! What a monitor checks, chosen by its URL's scheme (Gatus's convention):
//!
//! | URL | Check |
//! |---|---|
//! | `http://…`, `https://…` | one HTTP request |
//! | `tcp://host:port` | a TCP connect; with a `body`, the bytes sent and the first reply read |
//! | `tls://host:port` | a TCP connect and a TLS handshake: certificate chain, expiry, issuer, names, protocol |
//! | `dns://resolver[:port]/name?type=A` | one DNS query (`resolver` = `system`: the system's resolver) |
//! | `ws://…`, `wss://…` | a WebSocket handshake; with a `body`, the message sent and the first reply read |
//! | `icmp://host[?count=N]` | N ICMP echo requests (3 unless given, at most 10): round trip and loss |
//! | `grpc://host:port[?service=S]`, `grpcs://host[:port][?service=S]` | one `grpc.health.v1.Health/Check` call, over HTTP/2 in plaintext or TLS |

use std::fmt;

/// The kind of check a monitor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// `http://`, `https://`.
    Http,
    /// `tcp://host:port`.
    Tcp,
    /// `tls://host:port`.
    Tls,
    /// `dns://resolver/name?type=T`.
    Dns,
    /// `ws://`, `wss://`.
    WebSocket,
    /// `icmp://host?count=N`.
    Icmp,
    /// `grpc://host:port?service=S`, `grpcs://host:port?service=S`.
    Grpc,
}

/// The schemes, their kinds and default ports (`None`: the port must be given).
const SCHEMES: [(&str, CheckKind, Option<u16>); 10] = [
    ("http", CheckKind::Http, Some(80)),
    ("https", CheckKind::Http, Some(443)),
    ("tcp", CheckKind::Tcp, None),
    ("tls", CheckKind::Tls, None),
    ("dns", CheckKind::Dns, Some(53)),
    ("ws", CheckKind::WebSocket, Some(80)),
    ("wss", CheckKind::WebSocket, Some(443)),
    ("icmp", CheckKind::Icmp, Some(0)),
    ("grpc", CheckKind::Grpc, None),
    ("grpcs", CheckKind::Grpc, Some(443)),
];

/// The URL schemes monitors accept, for messages.
pub const SCHEME_LIST: &str =
    "http://, https://, tcp://, tls://, dns://, ws://, wss://, icmp://, grpc:// or grpcs://";

/// The host of a `dns://` URL that stands for the system's resolver.
pub const SYSTEM_RESOLVER: &str = "system";

impl CheckKind {
    /// The kind `url` asks for, its scheme (lowercase) and the scheme's default port.
    pub fn of(url: &str) -> Result<(CheckKind, &'static str, Option<u16>), String> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or_default();
        SCHEMES
            .iter()
            .find(|(s, ..)| s.eq_ignore_ascii_case(scheme))
            .map(|&(s, kind, port)| (kind, s, port))
            .ok_or_else(|| format!("must start with {SCHEME_LIST}, got {url:?}"))
    }

    /// Its name: `http`, `tcp`, `tls`, `dns`, `websocket`, `icmp`, `grpc`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Tcp => "tcp",
            CheckKind::Tls => "tls",
            CheckKind::Dns => "dns",
            CheckKind::WebSocket => "websocket",
            CheckKind::Icmp => "icmp",
            CheckKind::Grpc => "grpc",
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// DNS record types a DNS check may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Canonical name.
    Cname,
    /// Mail exchange.
    Mx,
    /// Text.
    Txt,
    /// Name server.
    Ns,
    /// Start of authority.
    Soa,
    /// Service locator.
    Srv,
    /// Pointer (reverse lookup).
    Ptr,
    /// Certification authority authorization.
    Caa,
}

impl RecordType {
    /// Every type, as written in a URL.
    pub const ALL: [(&'static str, RecordType); 10] = [
        ("A", RecordType::A),
        ("AAAA", RecordType::Aaaa),
        ("CNAME", RecordType::Cname),
        ("MX", RecordType::Mx),
        ("TXT", RecordType::Txt),
        ("NS", RecordType::Ns),
        ("SOA", RecordType::Soa),
        ("SRV", RecordType::Srv),
        ("PTR", RecordType::Ptr),
        ("CAA", RecordType::Caa),
    ];

    /// Parses a type name, in any case.
    pub fn parse(s: &str) -> Option<RecordType> {
        Self::ALL
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, t)| t)
    }

    /// Its name (`AAAA`).
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("A", |(name, _)| name)
    }
}

/// The query a `dns://` URL describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuery {
    /// The resolver's host, or `None` for the system's resolver.
    pub resolver: Option<String>,
    /// The resolver's port (53 unless given).
    pub port: u16,
    /// The name asked for.
    pub name: String,
    /// The record type asked for (`A` unless given).
    pub record_type: RecordType,
}

impl DnsQuery {
    /// Reads `dns://resolver[:port]/name[?type=T]`.
    pub fn parse(url: &str) -> Result<DnsQuery, String> {
        let rest = url
            .split_once("://")
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("dns"))
            .map(|(_, rest)| rest)
            .ok_or_else(|| format!("a DNS check's url starts with dns://, got {url:?}"))?;
        let (authority, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.contains('#') || query.contains('#') {
            return Err(format!("a DNS check's url has no fragment, got {url:?}"));
        }
        let (host, port) = split_port(authority)?;
        if host.is_empty() {
            return Err(format!(
                "has no resolver: dns://{SYSTEM_RESOLVER}/name or dns://1.1.1.1/name, got {url:?}"
            ));
        }
        let name = path.trim_end_matches('/');
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Err(format!(
                "names no record: dns://resolver/example.org?type=A, got {url:?}"
            ));
        }
        if name.len() > 253
            || name
                .split('.')
                .any(|label| label.is_empty() || label.len() > 63)
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.*".contains(&b))
        {
            return Err(format!("names an invalid domain {name:?}"));
        }
        let mut record_type = RecordType::A;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((key, value)) if key.eq_ignore_ascii_case("type") => {
                    record_type = RecordType::parse(value).ok_or_else(|| {
                        let names: Vec<&str> = RecordType::ALL.iter().map(|(n, _)| *n).collect();
                        format!(
                            "asks for an unknown record type {value:?} (one of {})",
                            names.join(", ")
                        )
                    })?;
                }
                _ => return Err(format!("has an unknown parameter {pair:?} (only type=)")),
            }
        }
        let resolver = (!host.eq_ignore_ascii_case(SYSTEM_RESOLVER)).then(|| host.to_owned());
        Ok(DnsQuery {
            resolver,
            port: port.unwrap_or(53),
            name: name.to_ascii_lowercase(),
            record_type,
        })
    }
}

/// Most echo requests one ICMP check sends.
pub const MAX_PINGS: u8 = 10;

/// What an `icmp://` URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpTarget {
    /// The host (a name, or an address; an IPv6 one without brackets).
    pub host: String,
    /// Echo requests to send (1 to [`MAX_PINGS`], 3 unless given).
    pub count: u8,
}

impl IcmpTarget {
    /// Reads `icmp://host[?count=N]`.
    pub fn parse(url: &str) -> Result<IcmpTarget, String> {
        let rest = url
            .split_once("://")
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("icmp"))
            .map(|(_, rest)| rest)
            .ok_or_else(|| format!("an ICMP check's url starts with icmp://, got {url:?}"))?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains(['/', '#', '@']) {
            return Err(format!(
                "an icmp:// url is icmp://host[?count=N], without a path, got {url:?}"
            ));
        }
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6
                .strip_suffix(']')
                .ok_or_else(|| "has an unclosed [ in its host".to_owned())?,
            None if authority.contains(':') => {
                return Err(format!("an icmp:// url has no port, got {url:?}"));
            }
            None => authority,
        };
        if host.is_empty() {
            return Err(format!("has no host, got {url:?}"));
        }
        let mut count = 3;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((key, value)) if key.eq_ignore_ascii_case("count") => {
                    count = value
                        .parse::<u8>()
                        .ok()
                        .filter(|n| (1..=MAX_PINGS).contains(n))
                        .ok_or_else(|| format!("count must be 1 to {MAX_PINGS}, got {value:?}"))?;
                }
                _ => return Err(format!("has an unknown parameter {pair:?} (only count=)")),
            }
        }
        Ok(IcmpTarget {
            host: host.to_owned(),
            count,
        })
    }
}

/// Longest service name a gRPC health check may ask about.
pub const MAX_GRPC_SERVICE: usize = 256;

/// The service a `grpc://` or `grpcs://` URL asks the health of: the `service` parameter, or
/// the empty name (the server as a whole, as the health protocol defines it).
pub fn grpc_service(url: &str) -> Result<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let mut service = String::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((key, value)) if key.eq_ignore_ascii_case("service") => {
                if value.len() > MAX_GRPC_SERVICE
                    || !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
                {
                    return Err(format!(
                        "names an invalid gRPC service {value:?} (letters, digits, `._-/`, at \
                         most {MAX_GRPC_SERVICE} bytes)"
                    ));
                }
                value.clone_into(&mut service);
            }
            _ => return Err(format!("has an unknown parameter {pair:?} (only service=)")),
        }
    }
    Ok(service)
}

/// `host[:port]`, the host of an IPv6 literal without its brackets.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or_else(|| "has an unclosed [ in its host".to_owned())?;
        (inside, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("has an invalid port {p:?}"))
        })
        .transpose()?;
    Ok((host, port))
}

/// Checks a monitor URL of any kind: its scheme, a host, no whitespace, an explicit port for
/// `tcp://`, `tls://` and `grpc://`, and a well-formed query for `dns://`, `icmp://` and
/// `grpc(s)://`.
pub(crate) fn check_monitor_url(url: &str) -> Result<CheckKind, String> {
    let (kind, scheme, default_port) = CheckKind::of(url)?;
    if url.chars().any(char::is_whitespace) {
        return Err(format!("must not contain whitespace, got {url:?}"));
    }
    let rest = &url[scheme.len() + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match kind {
        CheckKind::Dns => {
            DnsQuery::parse(url)?;
        }
        CheckKind::Icmp => {
            IcmpTarget::parse(url)?;
        }
        CheckKind::Tcp | CheckKind::Tls | CheckKind::Grpc => {
            if authority.contains('@') {
                return Err(format!("a {scheme}:// url has no credentials, got {url:?}"));
            }
            let (host, port) = split_port(host_port)?;
            if host.is_empty() {
                return Err(format!("has no host, got {url:?}"));
            }
            if port.is_none() && default_port.is_none() && !host_port.contains("${") {
                return Err(format!(
                    "a {scheme}:// url needs a port ({scheme}://host:port), got {url:?}"
                ));
            }
            let path = &rest[authority.len()..];
            if kind == CheckKind::Grpc {
                let (path, _query) = path.split_once('?').unwrap_or((path, ""));
                if !path.is_empty() && path != "/" || url.contains('#') {
                    return Err(format!(
                        "a {scheme}:// url is host:port[?service=NAME], without a path, got {url:?}"
                    ));
                }
                grpc_service(url)?;
            } else if !path.is_empty() && path != "/" {
                return Err(format!(
                    "a {scheme}:// url is host:port only, without a path or query, got {url:?}"
                ));
            }
        }
        CheckKind::Http | CheckKind::WebSocket => {
            if host_port.is_empty() {
                return Err(format!("has no host, got {url:?}"));
            }
        }
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_scheme() {
        for (url, kind) in [
            ("https://a.example/x", CheckKind::Http),
            ("HTTP://a.example", CheckKind::Http),
            ("tcp://a.example:25", CheckKind::Tcp),
            ("tls://a.example:443", CheckKind::Tls),
            ("dns://1.1.1.1/example.org?type=MX", CheckKind::Dns),
            ("dns://system/example.org", CheckKind::Dns),
            ("ws://a.example/socket", CheckKind::WebSocket),
            ("wss://a.example:8443/socket", CheckKind::WebSocket),
            ("icmp://a.example", CheckKind::Icmp),
            ("icmp://[2001:db8::1]?count=10", CheckKind::Icmp),
            ("grpc://a.example:50051", CheckKind::Grpc),
            ("grpc://a.example:50051/?service=pkg.Svc", CheckKind::Grpc),
            ("grpcs://a.example?service=x", CheckKind::Grpc),
        ] {
            assert_eq!(check_monitor_url(url), Ok(kind), "{url}");
        }
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("ftp://a/", "must start with http://"),
            ("tcp://a.example", "needs a port"),
            ("tls://a.example:443/path", "host:port only"),
            ("tcp://user@a.example:25", "no credentials"),
            ("tcp://:25", "has no host"),
            ("tcp://a.example:99999", "invalid port"),
            ("dns://1.1.1.1", "names no record"),
            ("dns:///example.org", "has no resolver"),
            ("dns://1.1.1.1/example.org?type=XYZ", "unknown record type"),
            ("dns://1.1.1.1/example.org?class=IN", "unknown parameter"),
            ("dns://1.1.1.1/bad..name", "invalid domain"),
            ("wss://", "has no host"),
            ("https://a.example/ x", "whitespace"),
            ("icmp://a.example:7", "no port"),
            ("icmp://a.example/path", "without a path"),
            ("icmp://a.example?count=11", "count must be 1 to 10"),
            ("icmp://a.example?count=0", "count must be 1 to 10"),
            ("icmp://a.example?ttl=3", "unknown parameter"),
            ("icmp://?count=2", "has no host"),
            ("grpc://a.example", "needs a port"),
            ("grpc://a.example:50051/pkg.Svc", "without a path"),
            ("grpc://a.example:50051?svc=x", "unknown parameter"),
            (
                "grpc://a.example:50051?service=a%20b",
                "invalid gRPC service",
            ),
            ("grpcs://u:p@a.example", "no credentials"),
        ] {
            let err = check_monitor_url(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn dns_queries() {
        assert_eq!(
            DnsQuery::parse("dns://[::1]:5353/Example.ORG.?type=aaaa"),
            Ok(DnsQuery {
                resolver: Some("::1".into()),
                port: 5353,
                name: "example.org".into(),
                record_type: RecordType::Aaaa,
            })
        );
        assert_eq!(
            IcmpTarget::parse("ICMP://[::1]/?count=5"),
            Ok(IcmpTarget {
                host: "::1".into(),
                count: 5
            })
        );
        let system = DnsQuery::parse("dns://system/example.org").unwrap();
        assert_eq!(system.resolver, None);
        assert_eq!(system.port, 53);
        assert_eq!(system.record_type, RecordType::A);
        assert_eq!(grpc_service("grpc://h:1"), Ok(String::new()));
        assert_eq!(
            grpc_service("grpcs://h?service=grpc.health.v1.Health"),
            Ok("grpc.health.v1.Health".into())
        );
        for (name, t) in RecordType::ALL {
            assert_eq!(RecordType::parse(name), Some(t));
            assert_eq!(t.as_str(), name);
        }
    }
}
