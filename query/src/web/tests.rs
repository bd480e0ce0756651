//! The status page's HTML from known data: what the public sees, escaped, with nothing of the
//! monitors but the names the spec gives.

use std::sync::Arc;

use super::status::data::{Component, DAYS, Group, Incident, Maintenance, PageData, State};
use super::status::render;

const NOW: i64 = 1_764_770_400_000; // 2025-12-03 14:00 UTC

fn data() -> PageData {
    let spec: vigil_schema::StatusPageSpec = serde_json::from_value(serde_json::json!({
        "id": "public",
        "title": "Acme <status>",
        "description": "Live & public",
        "groups": [{"name": "Core", "components": [
            {"monitor": "internal-api-monitor", "name": "API <v2>"},
            {"monitor": "web-monitor", "name": "Website"},
        ]}],
    }))
    .unwrap();
    let mut days = vec![None; usize::try_from(DAYS).unwrap()];
    days[89] = Some(0.5);
    days[88] = Some(1.0);
    PageData {
        spec: Arc::new(spec),
        now_ms: NOW,
        groups: vec![Group {
            name: "Core".into(),
            components: vec![
                Component {
                    name: "API <v2>".into(),
                    state: State::Degraded,
                    days: days.clone(),
                    uptime: Some(0.75),
                    response: vec![(NOW - 7_200_000, 120_000.0), (NOW - 3_600_000, 80_000.0)],
                },
                Component {
                    name: "Website".into(),
                    state: State::Operational,
                    days,
                    uptime: None,
                    response: vec![],
                },
            ],
        }],
        incidents: vec![Incident {
            component: "API <v2>".into(),
            severity: "critical".into(),
            started_ms: NOW - 5_400_000,
            resolved_ms: Some(NOW - 3_600_000),
        }],
        maintenance: vec![Maintenance {
            components: vec!["Website".into()],
            monitors: vec!["web-monitor".into()],
            starts_ms: NOW + 86_400_000,
            ends_ms: NOW + 90_000_000,
        }],
    }
}

#[test]
fn the_page_shows_states_bars_incidents_and_maintenance() {
    let html = render::page(&data());
    for text in [
        "<title>Acme &lt;status&gt; status</title>",
        "<h1>Acme &lt;status&gt;</h1>",
        "Live &amp; public",
        "Some systems are degraded",
        "Updated <time datetime=\"2025-12-03T14:00:00Z\">2025-12-03 14:00 UTC</time>",
        "<h4>API &lt;v2&gt;</h4>",
        "Degraded performance",
        "Operational",
        "75.0% uptime over 90 days",
        "no checks in 90 days",
        "2025-12-03: 50.0%",
        "2025-12-02: 100%",
        "data-points=\"2\"",
        "latest 80 ms",
        "No response times in the last 24 hours.",
        "API &lt;v2&gt;: Outage",
        "(30 min)",
        "<h3>Scheduled maintenance</h3>",
        "Scheduled from <time datetime=\"2025-12-04T14:00:00Z\">",
        "Affects: Website",
    ] {
        assert!(html.contains(text), "missing {text:?} in\n{html}");
    }
    assert_eq!(html.matches("<rect ").count(), 180, "90 bars per component");
    for hidden in ["internal-api-monitor", "web-monitor", "<script"] {
        assert!(!html.contains(hidden), "{hidden} leaked");
    }
}

#[test]
fn the_headline_is_the_worst_state() {
    let mut d = data();
    d.groups[0].components[1].state = State::Outage;
    assert!(render::page(&d).contains("Major outage"));
    for c in &mut d.groups[0].components {
        c.state = State::Operational;
    }
    assert!(render::page(&d).contains("All systems operational"));
}

#[test]
fn one_hour_of_response_times_is_a_level_line() {
    let mut d = data();
    d.groups[0].components[0].response = vec![(NOW, 50_000.0)];
    assert!(
        render::page(&d).contains(r#"<polyline points="0,4.0 540,4.0">"#),
        "{}",
        render::page(&d)
    );
}
