//! The e-mail channel against a real SMTP server on loopback (`scripts/smtp-test-server`,
//! aiosmtpd): STARTTLS and implicit TLS with certificate verification and authentication, and
//! the message read back by Python's own MIME parser.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;
use vigil_notify::delivery::{self, Answer};
use vigil_notify::{Alert, Context, MemorySecrets, Notification, Reason, Sender};
use vigil_schema::{AlertKind, AlertState, AlertTransition, ChannelSpec, Severity, Timestamp};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the test SMTP server with `scripts/smtp-test-server up` and export `scripts/smtp-test-server env`")
    })
}

/// (host, port) of a listener variable (`127.0.0.1:2587`).
fn listener(name: &str) -> (String, u16) {
    let value = env(name);
    let (host, port) = value.rsplit_once(':').unwrap();
    (host.to_owned(), port.parse().unwrap())
}

fn spec(tls: &str, listener_var: &str, to: &str, ca: bool) -> ChannelSpec {
    let (host, port) = listener(listener_var);
    let mut email = json!({
        "smtp_host": host, "smtp_port": port, "tls": tls,
        "username": env("VIGIL_TEST_SMTP_USER"), "password": "${secret:SMTP}",
        "from": "Vigil <vigil@example.com>", "to": [to],
    });
    if ca {
        email["ca_certificate"] = std::fs::read_to_string(env("VIGIL_TEST_SMTP_CA"))
            .unwrap()
            .into();
    }
    let spec: ChannelSpec =
        serde_json::from_value(json!({"id": "mail", "kind": {"email": email}})).unwrap();
    assert_eq!(vigil_notify::check::channel(&spec), Ok(()));
    spec
}

fn notification(to: AlertState) -> Notification {
    let at = Timestamp::now();
    let t = AlertTransition {
        transition_id: Uuid::new_v4(),
        rule_id: "checkout-p99".into(),
        monitor_id: "checkout-api".into(),
        region: Some("eu-west".into()),
        kind: AlertKind::LatencyPercentile,
        from: AlertState::Pending,
        to,
        at,
        value: 950_000.0,
        threshold: 800_000.0,
        severity: Severity::Critical,
        labels: BTreeMap::new(),
        message: "p99 of checkout-api is <b>950ms</b> & rising".into(),
    };
    let mut alert = Alert::firing(&t);
    if to == AlertState::Ok {
        alert.ends_at = Some(at);
    }
    Notification {
        channel_id: "mail".into(),
        group_key: "root:{}".into(),
        group_labels: BTreeMap::new(),
        reason: Reason::New,
        alerts: vec![alert],
        at,
        idempotency_key: delivery::idempotency_key("mail", &[t.transition_id], 0),
    }
}

async fn send(spec: &ChannelSpec, n: &Notification, password: &str) -> Answer {
    let secrets = MemorySecrets::new().with("SMTP", password);
    let ctx = Context {
        external_url: "https://vigil.example.com",
        secrets: &secrets,
        now: Timestamp::now(),
    };
    let sender = Sender::new(Duration::from_secs(10)).unwrap();
    sender.send(spec, n, &ctx).await.answer
}

/// The messages the server accepted for `rcpt`.
fn received(rcpt: &str) -> Vec<Value> {
    let dir = PathBuf::from(env("VIGIL_TEST_SMTP_MAIL"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| serde_json::from_slice::<Value>(&std::fs::read(e.path()).ok()?).ok())
        .filter(|m| {
            m["rcpt_tos"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(rcpt)))
        })
        .collect()
}

async fn wait_for(rcpt: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = received(rcpt).pop() {
            return m;
        }
        assert!(Instant::now() < deadline, "no message reached {rcpt}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn part<'a>(message: &'a Value, content_type: &str) -> &'a str {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == content_type)
        .and_then(|p| p["body"].as_str())
        .unwrap_or_else(|| panic!("no {content_type} part in {message}"))
}

#[tokio::test]
async fn firing_and_resolve_arrive_over_starttls_and_implicit_tls() {
    for (tls, var, listener_name) in [
        ("starttls", "VIGIL_TEST_SMTP_STARTTLS", "starttls"),
        ("implicit", "VIGIL_TEST_SMTP_TLS", "tls"),
    ] {
        let rcpt = format!("ops+{}@example.com", Uuid::new_v4().simple());
        let spec = spec(tls, var, &rcpt, true);
        let password = env("VIGIL_TEST_SMTP_PASSWORD");
        let firing = notification(AlertState::Firing);
        assert_eq!(
            send(&spec, &firing, &password).await,
            Answer::Accepted,
            "{tls}"
        );
        let m = wait_for(&rcpt).await;
        assert_eq!(m["listener"], listener_name);
        assert!(
            matches!(m["tls_version"].as_str(), Some("TLSv1.2" | "TLSv1.3")),
            "{tls}: {}",
            m["tls_version"]
        );
        assert_eq!(m["user"], "vigil", "authenticated");
        assert_eq!(m["mail_from"], "vigil@example.com");
        assert_eq!(m["from"], "Vigil <vigil@example.com>");
        assert_eq!(m["to"], rcpt.as_str());
        assert_eq!(m["subject"], "[FIRING:1] checkout-p99 on checkout-api");
        assert_eq!(
            m["message_id"],
            format!("<{}@vigil.notify>", firing.idempotency_key).as_str()
        );
        assert_eq!(m["content_type"], "multipart/alternative");
        let plain = part(&m, "text/plain");
        assert!(
            plain.contains("p99 of checkout-api is <b>950ms</b> & rising"),
            "{plain}"
        );
        let html = part(&m, "text/html");
        assert!(
            html.contains("p99 of checkout-api is &lt;b&gt;950ms&lt;/b&gt; &amp; rising"),
            "the alert's text is escaped in HTML: {html}"
        );
        assert!(!html.contains("<b>950ms"), "{html}");

        let rcpt_resolved = format!("ops+{}@example.com", Uuid::new_v4().simple());
        let spec = self::spec(tls, var, &rcpt_resolved, true);
        let resolved = notification(AlertState::Ok);
        assert_eq!(send(&spec, &resolved, &password).await, Answer::Accepted);
        let m = wait_for(&rcpt_resolved).await;
        assert_eq!(m["subject"], "[RESOLVED] checkout-p99 on checkout-api");
    }
}

#[tokio::test]
async fn an_untrusted_certificate_or_a_refusal_is_not_sent() {
    let password = env("VIGIL_TEST_SMTP_PASSWORD");
    let n = notification(AlertState::Firing);
    for (tls, var) in [
        ("starttls", "VIGIL_TEST_SMTP_STARTTLS"),
        ("implicit", "VIGIL_TEST_SMTP_TLS"),
    ] {
        // The server's CA is not among the public roots: the certificate is refused, before
        // the password is sent.
        let rcpt = format!("ops+{}@example.com", Uuid::new_v4().simple());
        let answer = send(&spec(tls, var, &rcpt, false), &n, &password).await;
        let error = match &answer {
            Answer::Transient(e) | Answer::Permanent(e) => e.clone(),
            other => panic!("{tls}: an untrusted certificate was accepted: {other:?}"),
        };
        assert!(error.starts_with("smtp: "), "{error}");
        assert!(!error.contains(&password), "{error}");

        // A wrong password: SMTP 535, permanent, not retried.
        let rcpt_bad_auth = format!("ops+{}@example.com", Uuid::new_v4().simple());
        let answer = send(&spec(tls, var, &rcpt_bad_auth, true), &n, "wrong").await;
        assert!(
            matches!(&answer, Answer::Permanent(e) if e.contains("535") || e.contains("credentials")),
            "{tls}: {answer:?}"
        );

        // A recipient the server refuses: 550, permanent.
        let rejected = format!("reject+{}@example.com", Uuid::new_v4().simple());
        let answer = send(&spec(tls, var, &rejected, true), &n, &password).await;
        assert!(
            matches!(&answer, Answer::Permanent(e) if e.contains("550")),
            "{tls}: {answer:?}"
        );

        tokio::time::sleep(Duration::from_millis(300)).await;
        for r in [&rcpt, &rcpt_bad_auth, &rejected] {
            assert!(received(r).is_empty(), "{tls}: a message reached {r}");
        }
    }
}
