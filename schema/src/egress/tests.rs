use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn label(s: &str) -> Option<&'static str> {
    classify(ip(s)).map(|np| np.kind.label())
}

/// Every row of the brief's table, by a representative address, with the expected reason.
#[test]
fn special_purpose_addresses_are_not_public() {
    let cases = [
        ("0.0.0.0", "this_network"),
        ("0.255.255.255", "this_network"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("100.64.0.1", "shared_address_space"),
        ("100.127.255.255", "shared_address_space"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("169.254.169.254", "metadata"),
        ("169.254.0.1", "link_local"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.0.0.1", "ietf_protocol"),
        ("192.0.2.10", "documentation"),
        ("192.88.99.1", "relay_anycast"),
        ("192.168.1.1", "private"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.255", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.254", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:10.1.2.3", "private"),
        ("64:ff9b::a00:1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b:1::8.8.8.8", "local_nat64"),
        ("100::1", "discard_only"),
        ("2001::1", "ietf_protocol"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "ietf_protocol"),
        ("2001:2::1", "benchmarking"),
        ("2001:10::1", "ietf_protocol"),
        ("2001:1ff:ffff::1", "ietf_protocol"),
        ("2001:db8::1", "documentation"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:a9fe:a9fe::1", "metadata"),
        ("2002:c0a8:101::", "private"),
        ("3fff::1", "documentation"),
        ("5f00::1", "reserved"),
        ("fd00:ec2::254", "metadata"),
        ("fc00::1", "unique_local"),
        ("fdff:ffff::1", "unique_local"),
        ("fe80::1", "link_local"),
        ("febf::1", "link_local"),
        ("fec0::1", "reserved"),
        ("ff02::1", "multicast"),
        ("::127.0.0.1", "reserved"),
        ("4000::1", "reserved"),
        ("e000::1", "reserved"),
    ];
    for (addr, expected) in cases {
        assert_eq!(label(addr), Some(expected), "{addr}");
    }
}

#[test]
fn public_addresses_and_the_exceptions_pass() {
    for addr in [
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.0",
        "192.88.98.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
        "2001:1::1",
        "2001:1::3",
        "2001:3::1",
        "2001:4:112::1",
        "2001:200::1",
        "2606:4700:4700::1111",
        "2a00:1450:4001::1",
    ] {
        assert_eq!(classify(ip(addr)), None, "{addr} is public");
    }
    assert_eq!(label("2001:1::4"), Some("ietf_protocol"));
}

#[test]
fn every_row_is_reachable_and_valid() {
    // No row hides behind an earlier, wider one, and every network has its host bits clear.
    for table in [&IPV4[..], &IPV6[..]] {
        for (i, row) in table.iter().enumerate() {
            assert_eq!(Cidr::new(row.range.addr, row.range.len), Some(row.range));
            let shadowed = table[..i].iter().any(|earlier| {
                earlier.range.len <= row.range.len && earlier.range.contains(row.range.addr)
            });
            assert!(!shadowed, "{} is shadowed", row.range);
            let first_match = !table[..i].iter().any(|e| e.range.contains(row.range.addr));
            if let Verdict::Block(kind) = row.verdict
                && first_match
            {
                let np = classify(row.range.addr).unwrap();
                assert_eq!((np.kind, np.range), (kind, row.range));
            }
        }
    }
    let shown = classify(ip("::ffff:127.0.0.1")).unwrap().to_string();
    assert_eq!(
        shown,
        "a loopback address (127.0.0.0/8), embedded as 127.0.0.1 in ::ffff:0.0.0.0/96"
    );
}

#[test]
fn allow_entries_parse_print_and_match() {
    let entries: Vec<AllowEntry> = [
        "10.1.0.0/16",
        "127.0.0.1:8090",
        "[::1]:8123",
        "fd00::/8",
        "internal.example.com",
        "*.corp.example.com:8443",
        "LocalHost.",
        "192.168.1.7",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let shown: Vec<String> = entries.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "10.1.0.0/16",
            "127.0.0.1:8090",
            "[::1]:8123",
            "fd00::/8",
            "internal.example.com",
            "*.corp.example.com:8443",
            "localhost",
            "192.168.1.7"
        ]
    );
    let policy = EgressPolicy {
        allow: entries,
        env_allow: vec![],
    };
    let ok = |name: Option<&str>, addr: &str, port| policy.check(name, ip(addr), port).is_ok();
    assert!(ok(None, "10.1.200.3", 5432));
    assert!(!ok(None, "10.2.0.1", 80));
    assert!(ok(None, "127.0.0.1", 8090));
    assert!(
        !ok(None, "127.0.0.1", 8091),
        "the port is part of the entry"
    );
    assert!(ok(None, "::1", 8123) && !ok(None, "::1", 80));
    assert!(
        ok(None, "::ffff:10.1.0.9", 80),
        "IPv4-mapped matches IPv4 entries"
    );
    assert!(ok(Some("internal.example.com"), "10.9.9.9", 80));
    assert!(ok(Some("a.b.corp.example.com"), "10.9.9.9", 8443));
    assert!(!ok(Some("a.corp.example.com"), "10.9.9.9", 443));
    assert!(!ok(Some("corp.example.com"), "10.9.9.9", 8443));
    assert!(!ok(Some("evilcorp.example.com"), "10.9.9.9", 8443));
    assert!(
        ok(Some("anything.example"), "8.8.8.8", 80),
        "public is always fine"
    );
    assert!(!ok(Some("other.example"), "169.254.169.254", 80));

    for bad in [
        "",
        "10.1.0.1/16",
        "10.0.0.0/33",
        "host:port",
        "a..b",
        "bad host",
        "1.2.3.4.5",
        "0x7f.1",
    ] {
        let err = bad.parse::<AllowEntry>().unwrap_err();
        assert!(
            err.starts_with("invalid egress allow entry"),
            "{bad}: {err}"
        );
    }
    let json = serde_json::to_string(&policy.allow[1]).unwrap();
    assert_eq!(json, "\"127.0.0.1:8090\"");
    assert_eq!(
        serde_json::from_str::<AllowEntry>(&json).unwrap(),
        policy.allow[1]
    );
}

fn spec(extra: serde_json::Value) -> MonitorSpec {
    let mut value = serde_json::json!({"id": "m", "name": "M", "url": "https://api.example.com/"});
    if let (Some(obj), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
        obj.extend(extra);
    }
    serde_json::from_value(value).unwrap()
}

fn problems(spec: &MonitorSpec, policy: &EgressPolicy) -> BTreeMap<String, String> {
    validate_egress(spec, policy)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.field, e.reason))
        .collect()
}

#[test]
fn literal_blocked_hosts_are_refused_at_write_time() {
    let none = EgressPolicy::default();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8123/?query=SELECT%201",
        "http://10.0.0.1/",
        "http://[::1]:8123/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://localhost:8080/",
        "http://api.localhost/",
        "https://[fe80::1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
    ] {
        let found = problems(&spec(serde_json::json!({"url": url})), &none);
        let reason = found.get("url").unwrap_or_else(|| panic!("{url} accepted"));
        assert!(reason.ends_with(ALLOW_HINT), "{url}: {reason}");
    }
    let found = problems(
        &spec(serde_json::json!({"url": "http://169.254.169.254/latest/meta-data/"})),
        &none,
    );
    assert_eq!(
        found["url"],
        format!("169.254.169.254 is the cloud metadata address (169.254.169.254/32); {ALLOW_HINT}")
    );
    let oauth = spec(serde_json::json!({"auth": {
        "type": "oauth2_client_credentials", "token_url": "http://10.0.0.5/token",
        "client_id": "c", "client_secret": "${secret:oauth}"}}));
    assert_eq!(
        problems(&oauth, &none).keys().collect::<Vec<_>>(),
        ["auth.token_url"]
    );

    for url in [
        "https://api.example.com/",
        "http://8.8.8.8/",
        "http://[2606:4700::1111]/",
        "http://internal.example.com/",
    ] {
        assert_eq!(
            validate_egress(&spec(serde_json::json!({"url": url})), &none),
            Ok(()),
            "{url}"
        );
    }
}

#[test]
fn every_check_kind_is_vetted_at_write_time() {
    let none = EgressPolicy::default();
    for url in [
        "tcp://127.0.0.1:6379",
        "tcp://localhost:22",
        "tls://10.0.0.1:443",
        "tls://[::1]:8443",
        "ws://127.1:8080/socket",
        "wss://169.254.169.254/",
        "dns://127.0.0.53/example.org",
        "dns://[::1]:5353/example.org?type=AAAA",
        "dns://10.0.0.2/internal.example?type=TXT",
    ] {
        let found = problems(&spec(serde_json::json!({"url": url})), &none);
        let reason = found.get("url").unwrap_or_else(|| panic!("{url} accepted"));
        assert!(reason.ends_with(ALLOW_HINT), "{url}: {reason}");
    }
    for url in [
        "tcp://db.example.com:5432",
        "tls://8.8.8.8:853",
        "wss://stream.example.com/feed",
        "dns://1.1.1.1/example.org?type=MX",
        // The system's resolver is the operator's, not the monitor's.
        "dns://system/example.org",
    ] {
        assert_eq!(
            validate_egress(&spec(serde_json::json!({"url": url})), &none),
            Ok(()),
            "{url}"
        );
    }
    let loopback = EgressPolicy {
        allow: vec!["127.0.0.1:5353".parse().unwrap()],
        env_allow: vec![],
    };
    let s = spec(serde_json::json!({"url": "dns://127.0.0.1:5353/example.test"}));
    assert_eq!(validate_egress(&s, &loopback), Ok(()));
    let s = spec(serde_json::json!({"url": "dns://127.0.0.1/example.test"}));
    assert!(problems(&s, &loopback).contains_key("url"));
}

#[test]
fn the_allow_list_admits_what_it_names() {
    let demo = EgressPolicy {
        allow: vec![
            "127.0.0.1:8090".parse().unwrap(),
            "127.0.0.1:8443".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap(),
            "localhost:3000".parse().unwrap(),
        ],
        env_allow: vec![],
    };
    for url in [
        "http://127.0.0.1:8090/api/fast",
        "https://127.0.0.1:8443/api/fast",
        "http://10.1.4.4/",
        "http://localhost:3000/",
    ] {
        let s = spec(serde_json::json!({"url": url}));
        assert_eq!(validate_egress(&s, &demo), Ok(()), "{url}");
    }
    for url in [
        "http://127.0.0.1:8123/",
        "http://127.0.0.1/",
        "http://10.2.0.1/",
        "http://localhost:8090/",
    ] {
        let s = spec(serde_json::json!({"url": url}));
        assert!(problems(&s, &demo).contains_key("url"), "{url}");
    }
}

#[test]
fn only_secrets_and_allow_listed_variables_may_be_referenced() {
    let policy = EgressPolicy {
        allow: vec![],
        env_allow: vec!["TENANT_ID".into()],
    };
    let ok = spec(serde_json::json!({
        "url": "https://api.example.com/${TENANT_ID}/health?cost=$${literal}",
        "headers": {"X-Tenant": "${TENANT_ID}", "X-Key": "${secret:api-key}"},
        "auth": {"type": "bearer", "token": "${secret:checkout-token}"},
    }));
    assert_eq!(validate_egress(&ok, &policy), Ok(()));

    let exfiltrating = spec(serde_json::json!({
        "url": "https://collector.example/?k=${VIGIL_API_KEY}",
        "headers": {"X-Leak": "${AWS_SECRET_ACCESS_KEY}", "X-Broken": "${secret:}"},
        "body": "${HOME}",
        "auth": {"type": "basic", "username": "u", "password": "${DATABASE_URL}"},
    }));
    let found = problems(&exfiltrating, &policy);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        [
            "auth.password",
            "body",
            "headers.X-Broken",
            "headers.X-Leak",
            "url"
        ]
    );
    assert!(
        found["url"].starts_with("${VIGIL_API_KEY} is not allowed: environment variables"),
        "{}",
        found["url"]
    );
    assert!(found["headers.X-Broken"].contains("invalid secret name"));
    assert_eq!(
        problems(&exfiltrating, &EgressPolicy::default()).len(),
        5,
        "nothing is allowed by default"
    );
}

#[test]
fn localhost_names() {
    assert!(is_localhost("localhost") && is_localhost("LOCALHOST."));
    assert!(is_localhost("api.localhost"));
    assert!(!is_localhost("localhost.example.com") && !is_localhost("mylocalhost"));
    assert_eq!(
        classify(IpAddr::V6(Ipv6Addr::LOCALHOST)).map(|n| n.kind),
        Some(Special::Loopback)
    );
    assert_eq!(
        classify(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).map(|n| n.kind),
        Some(Special::ThisNetwork)
    );
}
