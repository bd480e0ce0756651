use super::*;

fn t(series: &str, mid: &str, from: &str, to: &str, severity: &str, at_ms: i64) -> TransitionRow {
    TransitionRow {
        series: series.into(),
        mid: mid.into(),
        from_state: from.into(),
        to_state: to.into(),
        severity: severity.into(),
        at_ms,
    }
}

fn names() -> HashMap<&'static str, Vec<&'static str>> {
    [("api", vec!["Public API"]), ("web", vec!["Website"])]
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
        t("slow/api/", "api", "ok", "pending", "warning", 100),
        t("slow/api/", "api", "pending", "firing", "warning", 200),
        t("slow/api/", "api", "firing", "ok", "warning", 500),
        t("down/web/", "web", "ok", "firing", "critical", 1_000),
    ];
    assert_eq!(
        incidents(&rows, &names(), 0, false),
        [
            incident("Website", "critical", 1_000, None),
            incident("Public API", "warning", 200, Some(500)),
        ]
    );
}

#[test]
fn overlapping_periods_of_one_component_merge_with_the_worst_severity() {
    let rows = [
        t("slow/api/eu", "api", "pending", "firing", "warning", 100),
        t("down/api/", "api", "ok", "firing", "critical", 150),
        t("slow/api/eu", "api", "firing", "ok", "warning", 300),
        t("down/api/", "api", "firing", "ok", "critical", 400),
        // Apart from the first: its own incident.
        t("slow/api/eu", "api", "ok", "firing", "warning", 900),
        t("slow/api/eu", "api", "firing", "ok", "warning", 950),
    ];
    assert_eq!(
        incidents(&rows, &names(), 0, false),
        [
            incident("Public API", "warning", 900, Some(950)),
            incident("Public API", "critical", 100, Some(400)),
        ]
    );
}

#[test]
fn a_resolve_without_its_firing_started_before_the_range_or_the_cut() {
    let rows = [
        t("x/web/", "web", "ok", "pending", "warning", 250),
        t("slow/api/", "api", "firing", "ok", "warning", 300),
    ];
    assert_eq!(
        incidents(&rows, &names(), 10, false),
        [incident("Public API", "warning", 10, Some(300))]
    );
    // Cut at the cap: it fired at least since the oldest transition kept.
    assert_eq!(
        incidents(&rows, &names(), 10, true),
        [incident("Public API", "warning", 250, Some(300))]
    );
}

#[test]
fn a_pending_alert_that_never_fired_is_no_incident() {
    let rows = [
        t("slow/api/", "api", "pending", "ok", "warning", 300),
        t("slow/api/", "api", "ok", "pending", "warning", 400),
        t("slow/api/", "api", "pending", "ok", "warning", 500),
    ];
    assert_eq!(incidents(&rows, &names(), 0, false), []);
}

#[test]
fn a_monitor_under_two_names_shows_under_both_and_others_never() {
    let mut names = names();
    names.insert("api", vec!["Public API", "Checkout"]);
    let rows = [
        t(
            "x/secret-monitor/",
            "secret-monitor",
            "ok",
            "firing",
            "critical",
            1,
        ),
        t("down/api/", "api", "ok", "firing", "critical", 5),
    ];
    assert_eq!(
        incidents(&rows, &names, 0, false),
        [
            incident("Public API", "critical", 5, None),
            incident("Checkout", "critical", 5, None),
        ]
    );
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
