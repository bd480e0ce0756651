use super::*;

fn t(series: &str, mid: &str, to: &str, severity: &str, at_ms: i64) -> TransitionRow {
    TransitionRow {
        series: series.into(),
        mid: mid.into(),
        to_state: to.into(),
        severity: severity.into(),
        at_ms,
    }
}

fn names() -> HashMap<&'static str, &'static str> {
    [("api", "Public API"), ("web", "Website")]
        .into_iter()
        .collect()
}

fn incident(
    component: &str,
    severity: &str,
    started_ms: i64,
    resolved_ms: Option<i64>,
) -> Incident {
    Incident {
        component: component.into(),
        severity: severity.into(),
        started_ms,
        resolved_ms,
    }
}

#[test]
fn firing_periods_become_incidents_newest_first() {
    let rows = [
        t("slow/api/", "api", "pending", "warning", 100),
        t("slow/api/", "api", "firing", "warning", 200),
        t("slow/api/", "api", "ok", "warning", 500),
        t("down/web/", "web", "firing", "critical", 1_000),
    ];
    assert_eq!(
        incidents(&rows, &names(), 0),
        [
            incident("Website", "critical", 1_000, None),
            incident("Public API", "warning", 200, Some(500)),
        ]
    );
}

#[test]
fn overlapping_periods_of_one_component_merge_with_the_worst_severity() {
    let rows = [
        t("slow/api/eu", "api", "firing", "warning", 100),
        t("down/api/", "api", "firing", "critical", 150),
        t("slow/api/eu", "api", "ok", "warning", 300),
        t("down/api/", "api", "ok", "critical", 400),
        // Apart from the first: its own incident.
        t("slow/api/eu", "api", "firing", "warning", 900),
        t("slow/api/eu", "api", "ok", "warning", 950),
    ];
    assert_eq!(
        incidents(&rows, &names(), 0),
        [
            incident("Public API", "warning", 900, Some(950)),
            incident("Public API", "critical", 100, Some(400)),
        ]
    );
}

#[test]
fn a_resolve_without_its_firing_started_before_the_range() {
    let rows = [t("slow/api/", "api", "ok", "warning", 300)];
    assert_eq!(
        incidents(&rows, &names(), 10),
        [incident("Public API", "warning", 10, Some(300))]
    );
}

#[test]
fn monitors_not_on_the_page_never_show() {
    let rows = [t(
        "x/secret-monitor/",
        "secret-monitor",
        "firing",
        "critical",
        1,
    )];
    assert_eq!(incidents(&rows, &names(), 0), []);
}

#[test]
fn state_follows_alerts_then_the_latest_windows() {
    let critical = ["critical".to_owned()];
    let warning = ["warning".to_owned()];
    assert_eq!(state_of(None, None), State::NoData);
    assert_eq!(state_of(Some(&[1.0, 1.0]), None), State::Operational);
    assert_eq!(state_of(Some(&[1.0, 0.5]), None), State::Degraded);
    assert_eq!(state_of(Some(&[0.0, 0.0]), None), State::Outage);
    assert_eq!(state_of(Some(&[1.0, 0.0]), None), State::Degraded);
    assert_eq!(state_of(Some(&[1.0]), Some(&warning)), State::Degraded);
    assert_eq!(state_of(Some(&[1.0]), Some(&critical)), State::Outage);
    assert_eq!(state_of(None, Some(&warning)), State::Degraded);
}

#[test]
fn firing_now_is_the_last_transition_of_each_series() {
    let rows = [
        t("a/api/", "api", "firing", "critical", 1),
        t("a/api/", "api", "ok", "critical", 2),
        t("b/api/", "api", "firing", "warning", 3),
    ];
    let now = firing_now(&rows);
    assert_eq!(now["api"], ["warning"]);
    assert!(!now.contains_key("web"));
}
