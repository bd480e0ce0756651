//! What a status page shows, read from ClickHouse (windows, hourly rollups, alert transitions)
//! and from the maintenance windows view. Monitor ids go to ClickHouse as one bound array,
//! at most [`vigil_schema::MAX_STATUS_COMPONENTS`] of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use vigil_notify::matcher::MatcherSet;
use vigil_notify::silence::Schedule;
use vigil_schema::{StatusPageSpec, Timestamp};

use crate::Result;
use crate::service::Service;

/// Days of uptime bars.
pub(crate) const DAYS: i64 = 90;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// A window older than this says nothing about the current state.
const RECENT_MS: i64 = 15 * 60_000;
/// How far ahead scheduled maintenance is shown.
const AHEAD_MS: i64 = 14 * DAY_MS;
/// Most incidents shown.
const MAX_INCIDENTS: usize = 20;
/// Most alert transitions read for a page (the newest), whatever the history holds.
const MAX_TRANSITIONS: u64 = 20_000;

/// The state of a component, or of the whole page (the worst of its components).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum State {
    /// No window in the last 15 minutes.
    NoData,
    /// Every check passed and no alert fires.
    Operational,
    /// A maintenance window covers it.
    Maintenance,
    /// Some checks failed, or an alert that is not critical fires.
    Degraded,
    /// Every check failed in every region, or a critical alert fires.
    Outage,
}

/// One component as shown.
#[derive(Debug, Clone)]
pub(crate) struct Component {
    /// Its public name.
    pub name: String,
    /// Now.
    pub state: State,
    /// `ok / checks` per UTC day, oldest first ([`DAYS`] of them; `None`: no checks).
    pub days: Vec<Option<f64>>,
    /// `ok / checks` over all the days.
    pub uptime: Option<f64>,
    /// Hourly p95 in µs over the last 24 hours: (hour start ms, value).
    pub response: Vec<(i64, f64)>,
}

/// A group of components.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub name: String,
    pub components: Vec<Component>,
}

/// A period when alerts fired on a component.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Incident {
    /// The component's public name.
    pub component: String,
    /// The worst severity that fired (`critical`, `warning`, `info`).
    pub severity: String,
    pub started_ms: i64,
    /// `None` while it lasts.
    pub resolved_ms: Option<i64>,
}

/// A maintenance window concerning the page. Its name and id are not shown: they are written
/// for the operators, and the page shows only what its spec names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Maintenance {
    /// The public names of the components it covers.
    pub components: Vec<String>,
    /// Their monitors.
    pub monitors: Vec<String>,
    pub starts_ms: i64,
    pub ends_ms: i64,
}

/// Everything a page shows.
#[derive(Debug, Clone)]
pub(crate) struct PageData {
    pub spec: Arc<StatusPageSpec>,
    pub now_ms: i64,
    pub groups: Vec<Group>,
    pub incidents: Vec<Incident>,
    pub maintenance: Vec<Maintenance>,
}

impl PageData {
    /// The worst state of any component.
    pub(crate) fn overall(&self) -> State {
        self.groups
            .iter()
            .flat_map(|g| &g.components)
            .map(|c| c.state)
            .max()
            .unwrap_or(State::NoData)
    }
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct DayRow {
    mid: String,
    day_ms: i64,
    n: u64,
    ok: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct LatestRow {
    mid: String,
    availability: f64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct HourRow {
    mid: String,
    hour_ms: i64,
    p95: f64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct TransitionRow {
    series: String,
    mid: String,
    from_state: String,
    to_state: String,
    severity: String,
    at_ms: i64,
}

/// The latest transition of a series that is firing now.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct FiringRow {
    mid: String,
    severity: String,
}

/// Reads what `spec` shows.
pub(crate) async fn load(service: &Service, spec: &Arc<StatusPageSpec>) -> Result<PageData> {
    let now_ms = service.now().as_millis();
    let mut ids: Vec<&str> = spec.monitors().collect();
    ids.sort_unstable();
    ids.dedup();
    let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
    let days_from = today - (DAYS - 1) * DAY_MS;
    let ch = service.clickhouse();
    let days = ch
        .query(
            "SELECT toString(monitor_id) AS mid, \
             toInt64(toUnixTimestamp(toStartOfDay(window_start))) * 1000 AS day_ms, \
             sum(count) AS n, sum(ok_count) AS ok \
             FROM windows_1h FINAL \
             WHERE monitor_id IN ? AND window_start >= fromUnixTimestamp64Milli(toInt64(?)) \
             GROUP BY mid, day_ms",
        )
        .bind(&ids)
        .bind(days_from)
        .fetch_all::<DayRow>();
    let latest = ch
        .query(
            "SELECT toString(monitor_id) AS mid, \
             argMax(availability, window_start) AS availability \
             FROM windows_1m FINAL \
             WHERE monitor_id IN ? AND window_start >= fromUnixTimestamp64Milli(toInt64(?)) \
             AND count > 0 \
             GROUP BY mid, region",
        )
        .bind(&ids)
        .bind(now_ms - RECENT_MS)
        .fetch_all::<LatestRow>();
    let hours = ch
        .query(
            "SELECT toString(monitor_id) AS mid, \
             toInt64(toUnixTimestamp(window_start)) * 1000 AS hour_ms, \
             sum(p95_us * count) / sum(count) AS p95 \
             FROM windows_1h FINAL \
             WHERE monitor_id IN ? AND window_start >= fromUnixTimestamp64Milli(toInt64(?)) \
             AND count > 0 \
             GROUP BY mid, hour_ms ORDER BY hour_ms",
        )
        .bind(&ids)
        .bind((now_ms.div_euclid(HOUR_MS) - 23) * HOUR_MS)
        .fetch_all::<HourRow>();
    // Of transitions at the same instant (a hold ending, then a new firing), the one back to
    // `ok` comes first, as the processor wrote them.
    let transitions = ch
        .query(
            "SELECT series, mid, from_state, to_state, severity, at_ms FROM ( \
             SELECT concat(rule_id, '/', monitor_id, '/', region) AS series, \
             toString(monitor_id) AS mid, toString(from_state) AS from_state, \
             toString(to_state) AS to_state, toString(severity) AS severity, \
             toUnixTimestamp64Milli(at) AS at_ms, transition_id AS tid \
             FROM alerts FINAL \
             WHERE monitor_id IN ? AND at >= fromUnixTimestamp64Milli(toInt64(?)) \
             ORDER BY at DESC, tid DESC LIMIT ?) \
             ORDER BY at_ms, to_state != 'ok', tid",
        )
        .bind(&ids)
        .bind(days_from)
        .bind(MAX_TRANSITIONS)
        .fetch_all::<TransitionRow>();
    // What fires now, from each series' latest transition whenever it was (not bounded by
    // the range or the cap above).
    let firing = ch
        .query(
            "SELECT toString(monitor_id) AS mid, toString(latest.2) AS severity FROM ( \
             SELECT monitor_id, argMax((to_state, severity), (at, transition_id)) AS latest \
             FROM alerts FINAL WHERE monitor_id IN ? \
             GROUP BY rule_id, monitor_id, region) \
             WHERE latest.1 = 'firing'",
        )
        .bind(&ids)
        .fetch_all::<FiringRow>();
    let (days, latest, hours, transitions, firing) =
        tokio::try_join!(days, latest, hours, transitions, firing)?;
    let maintenance = maintenance(service, spec, now_ms);
    Ok(assemble(
        spec,
        now_ms,
        Rows {
            days,
            latest,
            hours,
            transitions,
            firing,
        },
        maintenance,
    ))
}

struct Rows {
    days: Vec<DayRow>,
    latest: Vec<LatestRow>,
    hours: Vec<HourRow>,
    transitions: Vec<TransitionRow>,
    firing: Vec<FiringRow>,
}

fn assemble(
    spec: &Arc<StatusPageSpec>,
    now_ms: i64,
    rows: Rows,
    maintenance: Vec<Maintenance>,
) -> PageData {
    let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
    let first_day = today - (DAYS - 1) * DAY_MS;
    // When the newest transitions filled the cap, what came before them is unknown.
    let capped = rows.transitions.len() as u64 >= MAX_TRANSITIONS;
    let mut days: HashMap<&str, BTreeMap<i64, (u64, u64)>> = HashMap::new();
    for r in &rows.days {
        let e = days.entry(&r.mid).or_default().entry(r.day_ms).or_default();
        e.0 += r.n;
        e.1 += r.ok;
    }
    let mut latest: HashMap<&str, Vec<f64>> = HashMap::new();
    for r in &rows.latest {
        latest.entry(&r.mid).or_default().push(r.availability);
    }
    let mut hours: HashMap<&str, Vec<(i64, f64)>> = HashMap::new();
    for r in &rows.hours {
        hours.entry(&r.mid).or_default().push((r.hour_ms, r.p95));
    }
    let mut firing: HashMap<&str, Vec<String>> = HashMap::new();
    for f in &rows.firing {
        firing.entry(&f.mid).or_default().push(f.severity.clone());
    }
    // A monitor may appear under several names.
    let mut names: HashMap<&str, Vec<&str>> = HashMap::new();
    for c in spec.groups.iter().flat_map(|g| &g.components) {
        names.entry(&c.monitor).or_default().push(&c.name);
    }
    let in_maintenance: Vec<&str> = maintenance
        .iter()
        .filter(|m| m.starts_ms <= now_ms && now_ms < m.ends_ms)
        .flat_map(|m| m.monitors.iter().map(String::as_str))
        .collect();
    let groups = spec
        .groups
        .iter()
        .map(|g| Group {
            name: g.name.clone(),
            components: g
                .components
                .iter()
                .map(|c| {
                    let per_day = days.get(c.monitor.as_str());
                    let bars: Vec<Option<f64>> = (0..DAYS)
                        .map(|i| {
                            per_day
                                .and_then(|d| d.get(&(first_day + i * DAY_MS)))
                                .filter(|(n, _)| *n > 0)
                                .map(|(n, ok)| *ok as f64 / *n as f64)
                        })
                        .collect();
                    let (n, ok) = per_day.map_or((0, 0), |d| {
                        d.values().fold((0, 0), |(n, ok), (a, b)| (n + a, ok + b))
                    });
                    let state = if in_maintenance.contains(&c.monitor.as_str()) {
                        State::Maintenance
                    } else {
                        state_of(
                            latest.get(c.monitor.as_str()).map(Vec::as_slice),
                            firing.get(c.monitor.as_str()).map(Vec::as_slice),
                        )
                    };
                    Component {
                        name: c.name.clone(),
                        state,
                        days: bars,
                        uptime: (n > 0).then(|| ok as f64 / n as f64),
                        response: hours.get(c.monitor.as_str()).cloned().unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect();
    PageData {
        spec: Arc::clone(spec),
        now_ms,
        groups,
        incidents: incidents(&rows.transitions, &names, first_day, capped),
        maintenance,
    }
}

/// A component's state from the latest availability of each region and the severities of
/// the alerts firing on its monitor.
fn state_of(latest: Option<&[f64]>, firing: Option<&[String]>) -> State {
    let firing = firing.unwrap_or_default();
    if firing.iter().any(|s| s == "critical") {
        return State::Outage;
    }
    let latest = latest.unwrap_or_default();
    if !latest.is_empty() && latest.iter().all(|a| *a <= 0.0) {
        return State::Outage;
    }
    if !firing.is_empty() || latest.iter().any(|a| *a < 1.0) {
        return State::Degraded;
    }
    if latest.is_empty() {
        State::NoData
    } else {
        State::Operational
    }
}

const fn rank(severity: &str) -> u8 {
    match severity.as_bytes() {
        b"critical" => 3,
        b"warning" => 2,
        _ => 1,
    }
}

/// Firing periods per series (from `firing` to the next transition out of it), merged per
/// component where they overlap, newest first. A series whose first transition in range leaves
/// `firing` fired since the range began (`from_ms`), or, when the transitions were cut at
/// [`MAX_TRANSITIONS`], since the oldest transition kept.
fn incidents(
    transitions: &[TransitionRow],
    names: &HashMap<&str, Vec<&str>>,
    from_ms: i64,
    capped: bool,
) -> Vec<Incident> {
    let since = if capped {
        transitions.first().map_or(from_ms, |t| t.at_ms)
    } else {
        from_ms
    };
    let mut open: HashMap<&str, (i64, &str)> = HashMap::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut periods: Vec<(&str, i64, Option<i64>, &str)> = Vec::new();
    for t in transitions {
        let first = seen.insert(&t.series);
        if t.to_state == "firing" {
            open.entry(&t.series).or_insert((t.at_ms, &t.severity));
        } else if let Some((start, severity)) = open.remove(t.series.as_str()) {
            periods.push((&t.mid, start, Some(t.at_ms), severity));
        } else if first && t.from_state == "firing" {
            periods.push((&t.mid, since, Some(t.at_ms), &t.severity));
        }
    }
    for t in transitions.iter().rev() {
        if let Some((start, severity)) = open.remove(t.series.as_str()) {
            periods.push((&t.mid, start, None, severity));
        }
    }
    periods.sort_by_key(|p| (p.0, p.1));
    let mut merged: Vec<(&str, i64, Option<i64>, &str)> = Vec::new();
    for p in periods {
        match merged.last_mut() {
            Some(m) if m.0 == p.0 && m.2.is_none_or(|end| p.1 <= end) => {
                m.2 = match (m.2, p.2) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                if rank(p.3) > rank(m.3) {
                    m.3 = p.3;
                }
            }
            _ => merged.push(p),
        }
    }
    let mut out: Vec<Incident> = merged
        .into_iter()
        .flat_map(|(mid, started_ms, resolved_ms, severity)| {
            names
                .get(mid)
                .into_iter()
                .flatten()
                .map(move |name| Incident {
                    component: (*name).to_owned(),
                    severity: severity.to_owned(),
                    started_ms,
                    resolved_ms,
                })
        })
        .collect();
    out.sort_by_key(|i| std::cmp::Reverse(i.started_ms));
    out.truncate(MAX_INCIDENTS);
    out
}

/// Maintenance windows concerning the page: those whose matchers are all on the `monitor` label
/// and select a component's monitor, in force now or starting within
/// [`AHEAD_MS`], soonest first.
fn maintenance(service: &Service, spec: &StatusPageSpec, now_ms: i64) -> Vec<Maintenance> {
    let mut out = Vec::new();
    for window in service.notify_views().maintenance.all() {
        // A window that also selects by region, rule or label covers only part of a component:
        // it does not put the whole component under maintenance.
        if window.matchers.is_empty() || window.matchers.iter().any(|m| m.label != "monitor") {
            continue;
        }
        let Ok(matchers) = MatcherSet::compile(&window.matchers) else {
            continue;
        };
        let covered: Vec<&vigil_schema::StatusComponent> = spec
            .groups
            .iter()
            .flat_map(|g| &g.components)
            .filter(|c| {
                let labels = [("monitor".to_owned(), c.monitor.clone())]
                    .into_iter()
                    .collect();
                matchers.matches(&labels)
            })
            .collect();
        if covered.is_empty() {
            continue;
        }
        let mut components: Vec<String> = covered.iter().map(|c| c.name.clone()).collect();
        components.dedup();
        let monitors = covered.iter().map(|c| c.monitor.clone()).collect();
        let Ok(schedule) = Schedule::new(&window.schedule) else {
            continue;
        };
        if let Some((starts_ms, ends_ms)) = schedule.next_window(Timestamp::from_millis(now_ms))
            && starts_ms < now_ms + AHEAD_MS
        {
            out.push(Maintenance {
                components,
                monitors,
                starts_ms,
                ends_ms,
            });
        }
    }
    out.sort_by_key(|m| m.starts_ms);
    out
}

#[cfg(test)]
mod tests;
