use super::*;
use crate::alert::tests::fire;
use crate::alert::{Alert, Labels};
use crate::group::Reason;

const KEY: Uuid = Uuid::from_u128(0x1234);
const NOW: Timestamp = Timestamp(1_700_000_000_000);

fn http(status: u16, retry_after: Option<u64>) -> SendOutcome {
    SendOutcome {
        answer: Answer::Http {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            body: if status >= 400 {
                "nope".into()
            } else {
                String::new()
            },
        },
        latency: Duration::from_millis(42),
    }
}

fn no_jitter() -> RetryPolicy {
    RetryPolicy {
        jitter: 0.0,
        ..RetryPolicy::default()
    }
}

fn after(d: Duration) -> Option<Timestamp> {
    Some(NOW.saturating_add_millis(d.as_millis() as i64))
}

#[test]
fn success_and_permanent_failures() {
    let p = RetryPolicy::default();
    for outcome in [http(200, None), http(204, None)] {
        let d = decide(&p, KEY, 1, &outcome, NOW);
        assert_eq!(
            (d.status, d.retry_at, d.error),
            (DeliveryStatus::Sent, None, None)
        );
    }
    let accepted = SendOutcome {
        answer: Answer::Accepted,
        latency: Duration::ZERO,
    };
    assert_eq!(
        decide(&p, KEY, 1, &accepted, NOW).status,
        DeliveryStatus::Sent
    );
    for status in [400, 401, 403, 404, 413, 422] {
        let d = decide(&p, KEY, 1, &http(status, Some(1)), NOW);
        assert_eq!(d.status, DeliveryStatus::Failed, "{status} is not retried");
        assert_eq!(d.retry_at, None);
        assert!(!d.disable_channel);
        assert_eq!(d.error.unwrap(), format!("HTTP {status}: nope"));
    }
    let redirect = decide(&p, KEY, 1, &http(301, None), NOW);
    assert_eq!(
        redirect.status,
        DeliveryStatus::Failed,
        "redirects are not followed"
    );
    assert_eq!(redirect.error.as_deref(), Some("HTTP 301"));
    let missing = SendOutcome {
        answer: Answer::Permanent("secret HOOK is not set".into()),
        latency: Duration::ZERO,
    };
    let d = decide(&p, KEY, 1, &missing, NOW);
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.error.as_deref(), Some("secret HOOK is not set"));
}

#[test]
fn gone_disables_the_channel() {
    let d = decide(&RetryPolicy::default(), KEY, 3, &http(410, None), NOW);
    assert_eq!(d.status, DeliveryStatus::Disabled);
    assert!(d.disable_channel);
    assert_eq!(d.retry_at, None);
    assert_eq!(d.error.as_deref(), Some("HTTP 410: nope"));
}

#[test]
fn server_errors_follow_the_standard_webhooks_schedule() {
    let p = no_jitter();
    let expected = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
    for (attempt, secs) in (1..).zip(expected) {
        let d = decide(&p, KEY, attempt, &http(500, None), NOW);
        assert_eq!(
            d.status,
            DeliveryStatus::Retrying,
            "after attempt {attempt}"
        );
        assert_eq!(
            d.retry_at,
            after(Duration::from_secs(secs)),
            "after attempt {attempt}"
        );
        assert_eq!(d.error.as_deref(), Some("HTTP 500: nope"));
    }
    let last = decide(&p, KEY, 8, &http(503, None), NOW);
    assert_eq!(last.status, DeliveryStatus::GaveUp);
    assert_eq!(last.retry_at, None);
    let timeout = SendOutcome {
        answer: Answer::Transient("timed out after 10s".into()),
        latency: Duration::from_secs(10),
    };
    let d = decide(&p, KEY, 2, &timeout, NOW);
    assert_eq!(d.retry_at, after(Duration::from_secs(300)));
    assert_eq!(
        decide(&p, KEY, 1, &http(408, None), NOW).status,
        DeliveryStatus::Retrying
    );
}

#[test]
fn too_many_requests_honours_retry_after() {
    let p = no_jitter();
    // Longer than the schedule's 5s: the receiver's wish wins.
    let d = decide(&p, KEY, 1, &http(429, Some(120)), NOW);
    assert_eq!(d.status, DeliveryStatus::Retrying);
    assert_eq!(d.retry_at, after(Duration::from_secs(120)));
    // Shorter than the schedule's 5m: never earlier than the schedule.
    let d = decide(&p, KEY, 2, &http(429, Some(1)), NOW);
    assert_eq!(d.retry_at, after(Duration::from_secs(300)));
    // Without Retry-After: the schedule.
    let d = decide(&p, KEY, 1, &http(429, None), NOW);
    assert_eq!(d.retry_at, after(Duration::from_secs(5)));
    // Capped.
    let d = decide(&p, KEY, 1, &http(503, Some(86_400)), NOW);
    assert_eq!(d.retry_at, after(Duration::from_secs(3600)));
    assert_eq!(
        decide(&p, KEY, 8, &http(429, Some(1)), NOW).status,
        DeliveryStatus::GaveUp
    );
}

#[test]
fn jitter_is_bounded_deterministic_and_spread() {
    let p = RetryPolicy::default();
    let mut seen = std::collections::BTreeSet::new();
    for k in 0..200u128 {
        let key = Uuid::from_u128(k);
        let d = p.delay(key, 3).unwrap();
        assert!(
            d >= Duration::from_secs(240) && d <= Duration::from_secs(360),
            "{d:?}"
        );
        assert_eq!(p.delay(key, 3), Some(d), "same key, same delay");
        seen.insert(d.as_secs());
    }
    assert!(seen.len() > 50, "delays spread: {}", seen.len());
    assert_eq!(p.delay(KEY, 1), Some(Duration::ZERO));
    assert_eq!(p.delay(KEY, 9), None);
    assert_eq!(p.delay(KEY, 0), None);
}

#[test]
fn exponential_policies_and_validation() {
    let p = RetryPolicy::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(10), 6);
    assert_eq!(
        p.schedule,
        [0, 1, 2, 4, 8, 10].map(Duration::from_secs).to_vec()
    );
    assert_eq!(p.attempts(), 6);
    assert_eq!(p.validate(), Ok(()));
    let bad = RetryPolicy {
        jitter: 1.5,
        ..RetryPolicy::default()
    };
    assert!(bad.validate().unwrap_err().contains("jitter"));
    let json = serde_json::to_value(RetryPolicy::default()).unwrap();
    assert_eq!(
        json["schedule"],
        serde_json::json!(["0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h"])
    );
    assert_eq!(json["max-retry-after"], "1h");
    let back: RetryPolicy = serde_json::from_value(json).unwrap();
    assert_eq!(back, RetryPolicy::default());
}

#[test]
fn retry_after_seconds_and_dates() {
    let now = Timestamp::parse_rfc3339("2015-10-21T07:27:00Z").unwrap();
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(Duration::ZERO),
        "a past date means no wait"
    );
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("-5", now), None);
}

#[test]
fn idempotency_keys() {
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let key = idempotency_key("hooks", &[a, b], 0);
    assert_eq!(
        key,
        idempotency_key("hooks", &[b, a], 0),
        "order does not matter"
    );
    assert_eq!(key, idempotency_key("hooks", &[b, a, a], 0));
    assert_ne!(key, idempotency_key("pager", &[a, b], 0), "per channel");
    assert_ne!(key, idempotency_key("hooks", &[a], 0));
    assert_ne!(
        key,
        idempotency_key("hooks", &[a, b], 1),
        "reminders differ"
    );
    // Pinned: a restarted notifier (or another build) must derive the same key.
    assert_eq!(
        key.to_string(),
        idempotency_key("hooks", &[a, b], 0).to_string()
    );
    assert_eq!(key.get_version_num(), 5);
    assert_eq!(
        key,
        Uuid::new_v5(
            &NAMESPACE,
            b"hooks\x1f00000000-0000-0000-0000-000000000001\x1f00000000-0000-0000-0000-000000000002"
        )
    );
}

#[test]
fn records_and_retry_queue() {
    let t = fire("p99", "checkout", None, 60);
    let n = Notification {
        channel_id: "hooks".into(),
        group_key: "root:{}".into(),
        group_labels: Labels::new(),
        reason: Reason::New,
        alerts: vec![Alert::firing(&t)],
        at: NOW,
        idempotency_key: idempotency_key("hooks", &[t.transition_id], 0),
    };
    let outcome = http(503, Some(30));
    let decision = decide(&no_jitter(), n.idempotency_key, 1, &outcome, NOW);
    let d = record(&n, 1, &outcome, &decision, NOW);
    assert_eq!(d.validate(), Ok(()));
    assert_eq!(d.status, DeliveryStatus::Retrying);
    assert_eq!(d.http_status, Some(503));
    assert_eq!(d.latency_ms, 42);
    assert_eq!(d.retry_at, after(Duration::from_secs(30)));
    assert_eq!(d.transition_ids, [t.transition_id]);
    let again = record(&n, 1, &outcome, &decision, NOW);
    assert_eq!(again.delivery_id, d.delivery_id, "deterministic");
    assert_ne!(
        record(&n, 2, &outcome, &decision, NOW).delivery_id,
        d.delivery_id
    );

    let mut q = Retries::new();
    q.schedule(n.clone(), 2, Timestamp(300));
    q.schedule(n.clone(), 3, Timestamp(100));
    let mut other = n.clone();
    other.channel_id = "pager".into();
    q.schedule(other, 2, Timestamp(200));
    assert_eq!(q.next_due(), Some(Timestamp(100)));
    let due = q.take_due(Timestamp(200));
    assert_eq!(due.iter().map(|p| p.attempt).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(due[1].notification.channel_id, "pager");
    assert_eq!(q.len(), 1);
    let json = serde_json::to_string(&q).unwrap();
    assert_eq!(serde_json::from_str::<Retries>(&json).unwrap(), q);
    assert_eq!(q.drop_channel("hooks"), 1);
    assert!(q.is_empty());
}
