use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// Answers from a fixed table, counting lookups; unknown names fail like NXDOMAIN.
#[derive(Debug, Default)]
struct FakeResolver {
    names: HashMap<&'static str, Vec<IpAddr>>,
    lookups: AtomicUsize,
}

impl FakeResolver {
    fn with(names: &[(&'static str, &[&str])]) -> Arc<Self> {
        Arc::new(Self {
            names: names
                .iter()
                .map(|(name, ips)| (*name, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
                .collect(),
            lookups: AtomicUsize::new(0),
        })
    }
}

impl Resolver for FakeResolver {
    fn resolve(&self, host: &str, _port: u16) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = self
            .names
            .get(host)
            .cloned()
            .ok_or_else(|| io::Error::other("no such host"));
        Box::pin(async move { answer })
    }
}

fn resolver() -> Arc<FakeResolver> {
    FakeResolver::with(&[
        ("metadata.test", &["169.254.169.254"]),
        ("internal.test", &["10.0.0.5"]),
        ("rebind.test", &["93.184.216.34", "192.168.1.10"]),
        ("v6only.test", &["fd00::1"]),
        ("mapped.test", &["::ffff:10.0.0.1"]),
        ("nat64.test", &["64:ff9b::7f00:1"]),
        ("localhost", &["::1", "127.0.0.1"]),
        (
            "public.test",
            &["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        ),
        ("internal.example.com", &["10.9.9.9"]),
        ("empty.test", &[]),
    ])
}

fn egress(allow: &[&str]) -> Egress {
    let policy = EgressPolicy {
        allow: allow.iter().map(|a| a.parse().unwrap()).collect(),
        env_allow: vec![],
    };
    Egress::new(policy).with_resolver(resolver())
}

async fn vet(egress: &Egress, url: &str) -> Result<Vec<SocketAddr>, Refused> {
    let url = Url::parse(url).unwrap();
    egress.vet(&url, &mut Timing::default()).await
}

/// Literal addresses of every range, IPv4 in the legacy spellings the URL parser accepts,
/// IPv4-mapped and NAT64 IPv6, and names resolving to blocked addresses (one of them to a
/// public and a private address): each blocked with its range's reason.
#[tokio::test]
async fn blocked_targets_name_their_reason() {
    let cases = [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://127.0.0.1:8123/?query=SELECT%201", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://[::1]:8123/", "loopback"),
        ("http://0.0.0.0:8080/", "this_network"),
        ("http://100.64.1.1/", "shared_address_space"),
        ("http://169.254.1.1/", "link_local"),
        ("http://172.16.5.4/", "private"),
        ("http://192.0.0.8/", "ietf_protocol"),
        ("http://192.0.2.1/", "documentation"),
        ("http://192.88.99.1/", "relay_anycast"),
        ("http://192.168.0.1/", "private"),
        ("http://198.18.0.1/", "benchmarking"),
        ("http://198.51.100.1/", "documentation"),
        ("http://203.0.113.1/", "documentation"),
        ("http://224.0.0.251/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://[::]/", "unspecified"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),
        ("http://[64:ff9b:1::1]/", "local_nat64"),
        ("http://[100::1]/", "discard_only"),
        ("http://[2001::1]/", "ietf_protocol"),
        ("http://[2001:db8::1]/", "documentation"),
        ("http://[2002:7f00:1::]/", "loopback"),
        ("http://[fc00::1]/", "unique_local"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://[fe80::1]/", "link_local"),
        ("http://[ff02::1]/", "multicast"),
        ("http://metadata.test/latest/meta-data/", "metadata"),
        ("http://internal.test/", "private"),
        ("http://rebind.test/", "private"),
        ("http://v6only.test/", "unique_local"),
        ("http://mapped.test/", "private"),
        ("http://nat64.test/", "loopback"),
        ("http://localhost:8080/", "loopback"),
        ("https://LOCALHOST/", "loopback"),
    ];
    assert!(cases.len() >= 25);
    let egress = egress(&[]);
    for (url, reason) in cases {
        let refused = vet(&egress, url).await.unwrap_err();
        assert_eq!(refused.outcome, Outcome::Blocked, "{url}: {refused:?}");
        assert_eq!(refused.reason, Some(reason), "{url}: {}", refused.message);
        assert!(refused.message.starts_with("blocked: "), "{url}");
        assert!(refused.message.ends_with(ALLOW_HINT), "{url}");
    }

    let rebind = vet(&egress, "http://rebind.test/").await.unwrap_err();
    assert_eq!(
        rebind.message,
        format!(
            "blocked: rebind.test resolves to 192.168.1.10, a private address (192.168.0.0/16); \
             {ALLOW_HINT}"
        )
    );
    let literal = vet(&egress, "http://[::ffff:127.0.0.1]/")
        .await
        .unwrap_err();
    assert_eq!(
        literal.message,
        format!(
            "blocked: ::ffff:127.0.0.1 is a loopback address (127.0.0.0/8), embedded as \
             127.0.0.1 in ::ffff:0.0.0.0/96; {ALLOW_HINT}"
        )
    );
}

#[tokio::test]
async fn public_and_allow_listed_targets_pass_with_the_vetted_addresses() {
    let strict = egress(&[]);
    let addrs = vet(&strict, "https://public.test/").await.unwrap();
    let expected: Vec<SocketAddr> = vec![
        "93.184.216.34:443".parse().unwrap(),
        "[2606:2800:220:1:248:1893:25c8:1946]:443".parse().unwrap(),
    ];
    assert_eq!(addrs, expected);
    assert_eq!(
        vet(&strict, "http://8.8.8.8/").await.unwrap(),
        ["8.8.8.8:80".parse::<SocketAddr>().unwrap()]
    );
    assert!(vet(&strict, "http://[2606:4700:4700::1111]/").await.is_ok());
    assert!(vet(&strict, "http://[::ffff:8.8.8.8]/").await.is_ok());

    let operator = egress(&["10.1.0.0/16", "internal.example.com", "127.0.0.1:8090"]);
    for url in [
        "http://10.1.2.3/",
        "https://internal.example.com/health",
        "http://127.0.0.1:8090/api/fast",
        "https://public.test/",
    ] {
        assert!(vet(&operator, url).await.is_ok(), "{url}");
    }
    for (url, reason) in [
        ("http://127.0.0.1:8091/", "loopback"),
        ("http://10.2.0.1/", "private"),
        ("http://internal.test/", "private"),
        ("http://169.254.169.254/", "metadata"),
    ] {
        let refused = vet(&operator, url).await.unwrap_err();
        assert_eq!(refused.reason, Some(reason), "{url}");
    }
}

#[tokio::test]
async fn resolution_failures_are_dns_outcomes() {
    let egress = egress(&[]);
    let unknown = vet(&egress, "http://nowhere.test/").await.unwrap_err();
    assert_eq!(unknown.outcome, Outcome::Dns);
    assert_eq!(unknown.message, "cannot resolve nowhere.test: no such host");
    let empty = vet(&egress, "http://empty.test/").await.unwrap_err();
    assert_eq!(
        (empty.outcome, empty.message.as_str()),
        (Outcome::Dns, "empty.test has no addresses")
    );
}

#[tokio::test]
async fn connects_to_the_vetted_address_after_one_lookup() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let names = FakeResolver::with(&[("svc.test", &["127.0.0.1"])]);
    let policy = EgressPolicy {
        allow: vec![format!("127.0.0.1:{port}").parse().unwrap()],
        env_allow: vec![],
    };
    let egress = Egress::new(policy).with_resolver(names.clone());
    let mut timing = Timing::default();
    let url = Url::parse(&format!("http://svc.test:{port}/")).unwrap();
    let stream = egress.connect(&url, &mut timing).await.unwrap();
    assert_eq!(stream.peer_addr().unwrap().port(), port);
    assert!(
        timing.dns_us.is_some() && timing.connect_us.is_some(),
        "{timing:?}"
    );
    assert_eq!(
        names.lookups.load(Ordering::SeqCst),
        1,
        "resolved exactly once"
    );

    let other = Url::parse("http://127.0.0.1:1/").unwrap();
    let mut timing = Timing::default();
    let refused = egress.connect(&other, &mut timing).await.unwrap_err();
    assert_eq!(refused.outcome, Outcome::Blocked);
    assert_eq!(timing, Timing::default(), "nothing was attempted");
}

#[test]
fn redirects_never_downgrade_unless_allowed() {
    let egress = egress(&[]);
    let url = |s: &str| Url::parse(s).unwrap();
    let down = egress
        .follow(
            &url("https://a.example/x"),
            &url("http://a.example/y"),
            false,
        )
        .unwrap_err();
    assert_eq!(down.outcome, Outcome::Blocked);
    assert_eq!(down.reason, Some("insecure_redirect"));
    assert_eq!(
        down.message,
        "blocked: redirect from https to http://a.example downgrades to plain http; set \
         allow_insecure_redirects on the monitor to follow it"
    );
    let allowed = egress.follow(&url("https://a.example/"), &url("http://a.example/"), true);
    assert_eq!(allowed, Ok(Hop { same_origin: false }));
    let up = egress.follow(&url("http://a.example/"), &url("https://a.example/"), false);
    assert_eq!(up, Ok(Hop { same_origin: false }));
    let same = egress.follow(
        &url("https://a.example/x"),
        &url("https://a.example/y"),
        false,
    );
    assert_eq!(same, Ok(Hop { same_origin: true }));
    let other = egress.follow(
        &url("https://a.example/"),
        &url("https://b.example/"),
        false,
    );
    assert_eq!(other, Ok(Hop { same_origin: false }));
    let ftp = egress
        .follow(&url("https://a.example/"), &url("ftp://a.example/"), false)
        .unwrap_err();
    assert_eq!(ftp.outcome, Outcome::InvalidUrl);
}
