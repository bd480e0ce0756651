//! The alert API against the local stack: transitions written by the processor's own writer
//! (`Sink::write_alerts`, twice, as a replay would) and read back through every history filter,
//! page by page, and as the active set, each compared with an answer computed here from the
//! transitions themselves; a backtest over the API against the processor's pipeline run here on
//! the same probes. Error budgets are in [`budget`].

mod budget;

use std::collections::{BTreeMap, HashMap};

use axum::http::{Method, StatusCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use uuid::Uuid;
use vigil_processor::Pipeline;
use vigil_processor::alert::RuleSet;
use vigil_processor::sink::Sink;
use vigil_schema::{
    AlertKind, AlertState, AlertTransition, Outcome, ProbeResult, RuleSpec, Severity, Timestamp,
    Timings, encode,
};

use crate::common::kafka_config;
use crate::query::{Stack, stack};

const MINUTE: i64 = 60_000;

/// Which transitions a filter of the history keeps.
type Keep = Box<dyn Fn(&AlertTransition) -> bool>;

#[allow(
    clippy::too_many_arguments,
    reason = "one transition's distinguishing values"
)]
fn transition(
    id: u128,
    rule: &str,
    monitor: &str,
    region: Option<&str>,
    from: AlertState,
    to: AlertState,
    at: i64,
    severity: Severity,
) -> AlertTransition {
    AlertTransition {
        // Ids differ in their low 64 bits only, so ClickHouse's UUID order is the numeric one.
        transition_id: Uuid::from_u128(id),
        rule_id: rule.into(),
        monitor_id: monitor.into(),
        region: region.map(str::to_owned),
        kind: AlertKind::Availability,
        from,
        to,
        at: Timestamp::from_millis(at),
        value: id as f64 / 100.0,
        threshold: 0.99,
        severity,
        labels: BTreeMap::from([("team".to_owned(), format!("team-{rule}"))]),
        message: format!("{rule} on {monitor}: {} → {}", from.as_str(), to.as_str()),
    }
}

fn known_transitions(t0: i64) -> Vec<AlertTransition> {
    use AlertState::{Firing, Ok, Pending};
    use Severity::{Critical, Info, Warning};
    vec![
        // Resolved: not active.
        transition(1, "lat", "api", Some("eu"), Ok, Pending, t0, Warning),
        transition(
            2,
            "lat",
            "api",
            Some("eu"),
            Pending,
            Firing,
            t0 + MINUTE,
            Warning,
        ),
        transition(
            3,
            "lat",
            "api",
            Some("eu"),
            Firing,
            Ok,
            t0 + 5 * MINUTE,
            Warning,
        ),
        // Firing.
        transition(
            4,
            "lat",
            "api",
            Some("us"),
            Ok,
            Firing,
            t0 + 2 * MINUTE,
            Warning,
        ),
        // A monitor-level (quorum) alert, firing.
        transition(
            5,
            "burn",
            "api",
            None,
            Ok,
            Pending,
            t0 + 3 * MINUTE,
            Critical,
        ),
        transition(
            6,
            "burn",
            "api",
            None,
            Pending,
            Firing,
            t0 + 4 * MINUTE,
            Critical,
        ),
        // Resolved.
        transition(7, "burn", "web", Some("eu"), Ok, Firing, t0 + MINUTE, Info),
        transition(
            8,
            "burn",
            "web",
            Some("eu"),
            Firing,
            Ok,
            t0 + 6 * MINUTE,
            Info,
        ),
        // Pending.
        transition(
            9,
            "down",
            "web",
            Some("us"),
            Ok,
            Pending,
            t0 + 7 * MINUTE,
            Critical,
        ),
        // Two transitions at the same time: the greater id is the latest.
        transition(
            11,
            "tie",
            "batch",
            Some("eu"),
            Ok,
            Firing,
            t0 + 8 * MINUTE,
            Warning,
        ),
        transition(
            12,
            "tie",
            "batch",
            Some("eu"),
            Firing,
            Ok,
            t0 + 8 * MINUTE,
            Warning,
        ),
        transition(
            14,
            "tie",
            "batch",
            Some("us"),
            Ok,
            Firing,
            t0 + 8 * MINUTE,
            Info,
        ),
        transition(
            13,
            "tie",
            "batch",
            Some("us"),
            Firing,
            Ok,
            t0 + 8 * MINUTE,
            Info,
        ),
        // Long ago: outside the default 7 days of history, yet still firing.
        transition(
            20,
            "old",
            "api",
            Some("eu"),
            Ok,
            Firing,
            t0 - 10 * 86_400_000,
            Critical,
        ),
    ]
}

fn ids(page: &Value) -> Vec<u128> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let id = a["transition_id"].as_str().unwrap();
            Uuid::parse_str(id).unwrap().as_u128()
        })
        .collect()
}

/// Every page of `uri` (which has a query string), following `next_cursor`.
async fn all_pages(s: &Stack, uri: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut next = uri.to_owned();
    loop {
        let page = s.json(&next).await;
        pages += 1;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => next = format!("{uri}&cursor={cursor}"),
            None => return (items, pages),
        }
    }
}

/// The history the API should give: matching transitions, newest first, ties by id.
fn expected_history(all: &[AlertTransition], keep: impl Fn(&AlertTransition) -> bool) -> Vec<u128> {
    let mut rows: Vec<&AlertTransition> = all.iter().filter(|t| keep(t)).collect();
    rows.sort_by_key(|t| std::cmp::Reverse((t.at, t.transition_id.as_u128())));
    rows.iter().map(|t| t.transition_id.as_u128()).collect()
}

/// The active set, computed from the transitions: latest per series, not ok.
fn expected_active(all: &[AlertTransition]) -> Vec<&AlertTransition> {
    let mut latest: BTreeMap<(String, String, String), &AlertTransition> = BTreeMap::new();
    for t in all {
        let key = (
            t.rule_id.clone(),
            t.monitor_id.clone(),
            t.region.clone().unwrap_or_default(),
        );
        let newer = latest
            .get(&key)
            .is_none_or(|l| (t.at, t.transition_id.as_u128()) > (l.at, l.transition_id.as_u128()));
        if newer {
            latest.insert(key, t);
        }
    }
    latest
        .into_values()
        .filter(|t| t.to != AlertState::Ok)
        .collect()
}

#[tokio::test]
async fn alerts_api_history_filters_pages_and_the_active_set() {
    let s = stack("alerts_api_history").await;
    let t0 = Timestamp::now().as_millis() - 3_600_000;
    let all = known_transitions(t0);
    let sink = Sink::new(s.db.client.clone());
    sink.write_alerts(&all).await.unwrap();
    // Written again, as a replay would: FINAL keeps one row per transition id.
    sink.write_alerts(&all[..5]).await.unwrap();

    let recent = move |t: &AlertTransition| t.at.as_millis() >= t0 - 86_400_000;
    let cases: Vec<(&str, Keep)> = vec![
        ("", Box::new(recent)),
        (
            "rule=lat",
            Box::new(move |t| recent(t) && t.rule_id == "lat"),
        ),
        ("monitor=web", Box::new(move |t| t.monitor_id == "web")),
        ("region=us", Box::new(|t| t.region.as_deref() == Some("us"))),
        ("region=", Box::new(|t| t.region.is_none())),
        (
            "state=firing",
            Box::new(move |t| recent(t) && t.to == AlertState::Firing),
        ),
        (
            "severity=critical",
            Box::new(move |t| recent(t) && t.severity == Severity::Critical),
        ),
        (
            "rule=tie&region=eu&state=ok",
            Box::new(|t| {
                t.rule_id == "tie" && t.region.as_deref() == Some("eu") && t.to == AlertState::Ok
            }),
        ),
        ("from=now-30d", Box::new(|_| true)),
        (
            "monitor=api&from=now-30d&to=now-1d",
            Box::new(|t| t.monitor_id == "api" && t.rule_id == "old"),
        ),
    ];
    for (filter, keep) in &cases {
        let want = expected_history(&all, keep);
        assert!(!want.is_empty(), "{filter}: the data has no case");
        let page = s.json(&format!("/api/v1/alerts?{filter}")).await;
        assert_eq!(ids(&page), want, "{filter}");
        assert!(page["next_cursor"].is_null());
        // Pages of 3 give the same transitions, once each, in the same order.
        let (items, pages) = all_pages(&s, &format!("/api/v1/alerts?limit=3&{filter}")).await;
        let paged: Vec<u128> = items
            .iter()
            .map(|a| {
                Uuid::parse_str(a["transition_id"].as_str().unwrap())
                    .unwrap()
                    .as_u128()
            })
            .collect();
        assert_eq!(paged, want, "{filter}: paged");
        assert_eq!(pages, want.len().div_ceil(3).max(1), "{filter}: pages");
    }
    let page = s.json("/api/v1/alerts?rule=burn&monitor=api").await;
    assert_eq!(
        page["items"][0],
        json!({
            "transition_id": Uuid::from_u128(6).to_string(), "rule_id": "burn",
            "monitor_id": "api", "region": null, "kind": "availability", "from": "pending",
            "to": "firing", "at": Timestamp::from_millis(t0 + 4 * MINUTE).to_string(),
            "value": 0.06, "threshold": 0.99, "severity": "critical",
            "labels": {"team": "team-burn"}, "message": "burn on api: pending → firing"
        })
    );

    // The active set: exactly the latest non-ok transition of each series, whatever its age.
    let active = expected_active(&all);
    let keys: Vec<(&str, &str, Option<&str>)> = active
        .iter()
        .map(|t| {
            (
                t.rule_id.as_str(),
                t.monitor_id.as_str(),
                t.region.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("burn", "api", None),
            ("down", "web", Some("us")),
            ("lat", "api", Some("us")),
            ("old", "api", Some("eu")),
            ("tie", "batch", Some("us")),
        ]
    );
    let page = s.json("/api/v1/alerts/active").await;
    let want: Vec<Value> = active
        .iter()
        .map(|t| {
            json!({
                "rule_id": t.rule_id, "monitor_id": t.monitor_id, "region": t.region,
                "kind": "availability", "state": t.to.as_str(),
                "severity": t.severity.as_str(), "since": t.at.to_string(), "value": t.value,
                "threshold": 0.99, "labels": t.labels, "message": t.message,
                "transition_id": t.transition_id.to_string(),
            })
        })
        .collect();
    assert_eq!(page, json!({"items": want, "next_cursor": null}));
    let (items, pages) = all_pages(&s, "/api/v1/alerts/active?limit=2").await;
    assert_eq!((items, pages), (want.clone(), 3));
    for (filter, keep) in [
        (
            "rule=lat",
            &(|t: &&AlertTransition| t.rule_id == "lat") as &dyn Fn(&&AlertTransition) -> bool,
        ),
        ("monitor=web", &|t| t.monitor_id == "web"),
        ("severity=critical", &|t| t.severity == Severity::Critical),
        ("severity=info", &|t| t.severity == Severity::Info),
        ("region=", &|t| t.region.is_none()),
        ("rule=burn&monitor=web", &|_| false),
    ] {
        let want: Vec<Value> = active
            .iter()
            .zip(&want)
            .filter(|(t, _)| keep(t))
            .map(|(_, v)| v.clone())
            .collect();
        let page = s.json(&format!("/api/v1/alerts/active?{filter}")).await;
        assert_eq!(page["items"], json!(want), "{filter}");
    }

    // GraphQL over the same rows.
    let (status, body) = s
        .call(
            Method::POST,
            "/graphql",
            Some(json!({"query": r#"{
                alerts(ruleId: "lat", state: "firing", first: 1) { items { transitionId severity labels } nextCursor }
                activeAlerts(severity: "critical") { items { ruleId monitorId region state since } }
            }"#})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    let alerts = &body["data"]["alerts"];
    assert_eq!(
        alerts["items"],
        json!([{"transitionId": Uuid::from_u128(4).to_string(), "severity": "WARNING",
                "labels": {"team": "team-lat"}}]),
        "{body}"
    );
    assert!(alerts["nextCursor"].is_string());
    assert_eq!(
        body["data"]["activeAlerts"]["items"],
        json!([
            {"ruleId": "burn", "monitorId": "api", "region": null, "state": "firing",
             "since": Timestamp::from_millis(t0 + 4 * MINUTE).to_string()},
            {"ruleId": "down", "monitorId": "web", "region": "us", "state": "pending",
             "since": Timestamp::from_millis(t0 + 7 * MINUTE).to_string()},
            {"ruleId": "old", "monitorId": "api", "region": "eu", "state": "firing",
             "since": Timestamp::from_millis(t0 - 10 * 86_400_000).to_string()},
        ])
    );
    s.finish().await;
}

fn probe(n: u64, monitor: &str, t_ms: i64, ok: bool) -> ProbeResult {
    ProbeResult {
        event_id: Uuid::from_u128(u128::from(n) + 1),
        monitor_id: monitor.into(),
        region: "eu".into(),
        agent: "it".into(),
        scheduled_at: Timestamp::from_millis(t_ms),
        event_time: Timestamp::from_millis(t_ms),
        method: "GET".into(),
        url: "http://127.0.0.1:1/".into(),
        status_code: Some(if ok { 200 } else { 503 }),
        outcome: if ok { Outcome::Ok } else { Outcome::HttpStatus },
        error: None,
        timings: Timings {
            total_us: 20_000,
            ..Timings::default()
        },
        response_size: Some(10),
        assertions: Vec::new(),
        tls_cert_expiry: None,
        steps: Vec::new(),
    }
}

#[tokio::test]
async fn alerts_api_backtest_reports_what_the_pipeline_produces() {
    let s = stack("alerts_api_backtest").await;
    s.create("api", &["prod"]).await;
    // Every 10 s for 30 minutes, two hours ago; checks 60–89 and 120–129 fail.
    let t0 = (Timestamp::now().as_millis() - 2 * 3_600_000) / MINUTE * MINUTE;
    let events: Vec<ProbeResult> = (0..180)
        .map(|n| {
            probe(
                n,
                "api",
                t0 + n as i64 * 10_000,
                !(60..90).contains(&n) && !(120..130).contains(&n),
            )
        })
        .collect();
    let producer: FutureProducer = kafka_config().set("acks", "all").create().unwrap();
    for e in &events {
        producer
            .send(
                FutureRecord::to(&s.topics.probes)
                    .key(e.monitor_id.as_bytes())
                    .payload(&encode(e).unwrap())
                    .timestamp(e.event_time.as_millis()),
                std::time::Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let rule = json!({"id": "api-down", "tags": ["prod"],
                      "condition": {"consecutive_failures": {"failures": 3, "successes": 2}}});

    // The same rules through the processor's pipeline here.
    let spec: RuleSpec = serde_json::from_value(rule.clone()).unwrap();
    let tags = HashMap::from([("api".to_owned(), vec!["prod".to_owned()])]);
    let mut pipeline = Pipeline::new(vigil_processor::Config {
        store_probes: false,
        ..vigil_processor::Config::default()
    });
    pipeline.set_rules(RuleSet::new(vec![spec], tags, false));
    for (offset, e) in events.iter().enumerate() {
        let raw = encode(e).unwrap();
        pipeline.process_event(
            0,
            offset as i64,
            Some(b"api"),
            &raw,
            e.clone(),
            Timestamp::now().as_millis(),
        );
    }
    pipeline.finish();
    let want: Vec<String> = pipeline
        .take_output()
        .transitions
        .iter()
        .map(|t| t.transition_id.to_string())
        .collect();
    assert_eq!(want.len(), 4, "two firings and two resolves");

    let from = Timestamp::from_millis(t0 - MINUTE).to_string();
    let body = json!({"rules": [rule], "from": from, "to": "now"});
    let (status, report) = s
        .call(Method::POST, "/api/v1/rules/backtest", Some(body))
        .await;
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(status, StatusCode::OK, "{report}");
    let got: Vec<&str> = report["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transition_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, want);
    assert_eq!(report["events"], 180);
    assert_eq!(report["truncated"], false);
    assert_eq!(
        report["from"],
        Timestamp::from_millis(t0 - MINUTE).to_string()
    );
    assert_eq!(report["rejected"], json!([]));
    let stats = &report["rules"][0];
    assert_eq!(
        (
            &stats["rule_id"],
            &stats["fired"],
            &stats["resolved"],
            &stats["firing_at_end"]
        ),
        (&json!("api-down"), &json!(2), &json!(2), &json!(0))
    );
    // Fired at the 3rd failure (checks 62 and 122), resolved at the 2nd success after (91 and
    // 131), 10 s apart.
    assert_eq!(stats["firing_ms"], (29 + 9) * 10_000);
    assert_eq!(report["transitions"][0]["severity"], "warning");

    let (status, report) = s
        .call(
            Method::POST,
            "/graphql",
            Some(json!({"query": format!(
                r#"mutation {{ backtestRules(input: {{rules: [{{id: "api-down", tags: ["prod"],
                   condition: {{consecutive_failures: {{}}}}}}], from: "{from}",
                   max_transitions: 1}}) {{ events truncated transitions {{ transitionId }}
                   rules {{ ruleId fired }} }} }}"#
            )})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(
        report["data"]["backtestRules"],
        json!({"events": 180, "truncated": true,
               "transitions": [{"transitionId": want[0]}],
               "rules": [{"ruleId": "api-down", "fired": 2}]}),
        "{report}"
    );
    s.finish().await;
}
