//! Every query of the committed Grafana dashboards (`docker/grafana/dashboards/*.json`: panels,
//! template variables, annotations) runs on the real ClickHouse engine against seeded tables and
//! returns exactly the expected columns (time column first for time series, ClickHouse types)
//! and values.
//!
//! Queries are expanded as Grafana and the grafana-clickhouse-datasource plugin expand them:
//! 1. the plugin frontend replaces `$__conditionalAll(condition, $var)` by `1=1` when `$var` is
//!    All, else by `condition` (`CHDatasource.applyConditionalAll`);
//! 2. Grafana's template service substitutes `$var` / `${var}` / `${var:format}` (multi-value
//!    variables without a format use the plugin's `'a','b'` format);
//! 3. the plugin backend (sqlds, `pkg/macros/macros.go`) expands `$__timeFilter(c)` to
//!    `c >= toDateTime(<from s>) AND c <= toDateTime(<to s>)`, `$__timeInterval(c)` to
//!    `toStartOfInterval(toDateTime(c), INTERVAL <interval s> second)`, `$__fromTime` /
//!    `$__toTime` to `toDateTime(<s>)`, the `_ms` variants to `fromUnixTimestamp64Milli(<ms>)`,
//!    and `$__interval_s` to the interval in seconds (at least 1).
//!
//! Expected values are computed here from the seeded windows with [`Sketch`], independently of
//! the SQL: percentiles merge the windows' sketches, never average stored percentiles. Alert
//! annotations and the active alerts tables run on transitions the processor's pipeline
//! produced from known checks, written by its own sink ([`alerts`]); their expected rows come
//! from those transitions. The `monitors` table behind the monitor and tag variables, the tag
//! filters and the overview's monitor list is not seeded by hand either: specs are applied to a
//! monitors topic as `vigil apply` applies them and the processor's follower materializes it
//! ([`monitors`]).

mod alerts;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickhouse::{Client, Row};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use vigil_ingest::KafkaConnection;
use vigil_ingest::plan::{Change, Plan};
use vigil_schema::migration::migrate;
use vigil_schema::sketch::Sketch;
use vigil_schema::{MonitorSpec, TopicNames};

use crate::common::{TestDb, clickhouse, kafka_brokers, kafka_config, unique_name};

// --- expansion as Grafana and the plugin do it ------------------------------------------------

/// The selection of one template variable.
#[derive(Debug, Clone)]
enum Selection {
    /// "All" of a multi-value variable; its options, for any use outside `$__conditionalAll`.
    All(Vec<String>),
    /// Selected values of a multi-value variable.
    Many(Vec<String>),
    /// The value of a single-value variable.
    One(String),
}

/// The request context the plugin backend sees.
#[derive(Debug, Clone, Copy)]
struct TimeRange {
    from_ms: i64,
    to_ms: i64,
    interval_ms: i64,
}

type Variables = BTreeMap<&'static str, Selection>;

/// Arguments of a macro call starting at `(`: sqlds' `parseArgs` (balanced parentheses, split on
/// top-level commas, trimmed). Returns the arguments and the length consumed, `None` when a
/// parenthesis is not closed.
fn macro_args(text: &str) -> Option<(Vec<String>, usize)> {
    if !text.starts_with('(') {
        return Some((Vec::new(), 0));
    }
    let mut args = Vec::new();
    let mut depth = 0;
    let mut arg = String::new();
    for (i, c) in text.char_indices() {
        match c {
            '(' => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            ')' => {
                depth -= 1;
                if depth == 0 {
                    args.push(arg.trim().to_owned());
                    return Some((args, i + 1));
                }
            }
            ',' if depth == 1 => {
                args.push(arg.trim().to_owned());
                arg.clear();
                continue;
            }
            _ => {}
        }
        arg.push(c);
    }
    None
}

/// Step 1: `$__conditionalAll(condition, $var)`, innermost-last as the plugin does (it works
/// from the last occurrence backwards and keeps the condition text untrimmed).
fn conditional_all(sql: &str, vars: &Variables) -> Result<String, String> {
    const MACRO: &str = "$__conditionalAll(";
    let mut sql = sql.to_owned();
    while let Some(at) = sql.rfind(MACRO) {
        let open = at + MACRO.len() - 1;
        // The plugin's getMacroArgs keeps arguments untrimmed.
        let mut depth = 0;
        let mut args = Vec::new();
        let mut start = open + 1;
        let mut end = None;
        for (i, c) in sql[open..].char_indices() {
            let i = open + i;
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        args.push(sql[start..i].to_owned());
                        end = Some(i + 1);
                        break;
                    }
                }
                ',' if depth == 1 => {
                    args.push(sql[start..i].to_owned());
                    start = i + 1;
                }
                _ => {}
            }
        }
        let end = end.ok_or("unclosed $__conditionalAll")?;
        let [condition, variable] = <[String; 2]>::try_from(args)
            .map_err(|a| format!("$__conditionalAll takes 2 arguments, got {a:?}"))?;
        let name = variable
            .trim()
            .trim_start_matches('$')
            .trim_start_matches('{')
            .trim_end_matches('}');
        let selection = vars
            .get(name)
            .ok_or_else(|| format!("$__conditionalAll over unknown variable {name}"))?;
        let phrase = match selection {
            Selection::All(_) => "1=1".to_owned(),
            Selection::Many(values) if values.is_empty() => "1=1".to_owned(),
            _ => condition,
        };
        sql.replace_range(at..end, &phrase);
    }
    Ok(sql)
}

/// Grafana's `singlequote` format of one value.
fn single_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "\\'"))
}

fn format_selection(selection: &Selection, format: Option<&str>) -> Result<String, String> {
    let values: Vec<String> = match selection {
        Selection::All(values) | Selection::Many(values) => values.clone(),
        Selection::One(value) => {
            return match format {
                None | Some("raw") => Ok(value.clone()),
                Some("singlequote") => Ok(single_quote(value)),
                Some(other) => Err(format!("format {other} is not handled here")),
            };
        }
    };
    match format {
        // The plugin's own format for multi-value variables used bare.
        None | Some("singlequote") => Ok(values
            .iter()
            .map(|v| single_quote(v))
            .collect::<Vec<_>>()
            .join(",")),
        Some(other) => Err(format!("format {other} is not handled here")),
    }
}

/// Step 2: template variables. Names Grafana does not know (macros) are left in place.
fn template(sql: &str, vars: &Variables) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, format, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let close = braced.find('}').ok_or("unclosed ${")?;
            let inner = &braced[..close];
            let (name, format) = match inner.split_once(':') {
                Some((name, format)) => (name, Some(format)),
                None => (inner, None),
            };
            (name, format, 1 + close + 2)
        } else {
            let len = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (&after[..len], None, len + 1)
        };
        match vars.get(name) {
            Some(selection) => out.push_str(&format_selection(selection, format)?),
            None => out.push_str(&rest[at..at + consumed]),
        }
        rest = &rest[at + consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Step 3: the plugin's backend macros.
fn macros(sql: &str, range: TimeRange) -> Result<String, String> {
    let from_s = range.from_ms.div_euclid(1000);
    let to_s = range.to_ms.div_euclid(1000);
    let interval_s = (range.interval_ms / 1000).max(1);
    let interval_ms = range.interval_ms.max(1);
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find("$__") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let name = &after[..len];
        let (args, args_len) =
            macro_args(&after[len..]).ok_or_else(|| format!("$__{name}: unclosed arguments"))?;
        let one = |args: &[String]| -> Result<String, String> {
            match args {
                [column] => Ok(column.clone()),
                _ => Err(format!("$__{name} takes 1 argument, got {}", args.len())),
            }
        };
        let expansion = match name {
            "fromTime" => format!("toDateTime({from_s})"),
            "toTime" => format!("toDateTime({to_s})"),
            "fromTime_ms" => format!("fromUnixTimestamp64Milli({})", range.from_ms),
            "toTime_ms" => format!("fromUnixTimestamp64Milli({})", range.to_ms),
            "timeFilter" => {
                let c = one(&args)?;
                format!("{c} >= toDateTime({from_s}) AND {c} <= toDateTime({to_s})")
            }
            "timeFilter_ms" => {
                let c = one(&args)?;
                format!(
                    "{c} >= fromUnixTimestamp64Milli({}) AND {c} <= fromUnixTimestamp64Milli({})",
                    range.from_ms, range.to_ms
                )
            }
            "timeInterval" => format!(
                "toStartOfInterval(toDateTime({}), INTERVAL {interval_s} second)",
                one(&args)?
            ),
            "timeInterval_ms" => format!(
                "toStartOfInterval(toDateTime64({}, 3), INTERVAL {interval_ms} millisecond)",
                one(&args)?
            ),
            "interval_s" => interval_s.to_string(),
            other => return Err(format!("$__{other} is not a macro of the plugin")),
        };
        out.push_str(&expansion);
        rest = &after[len + args_len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The SQL ClickHouse receives for a dashboard query.
fn expand(sql: &str, vars: &Variables, range: TimeRange) -> Result<String, String> {
    macros(&template(&conditional_all(sql, vars)?, vars)?, range)
}

#[test]
fn macros_expand_like_the_plugin() {
    let range = TimeRange {
        from_ms: 1_415_792_726_123,
        to_ms: 1_447_328_726_456,
        interval_ms: 20_000,
    };
    let cases = [
        (
            "select * from foo where $__timeFilter(cast(sth as timestamp) )",
            "select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND cast(sth as timestamp) <= toDateTime(1447328726)",
        ),
        (
            "where $__timeFilter_ms(t) and $__fromTime <= x and x <= $__toTime_ms",
            "where t >= fromUnixTimestamp64Milli(1415792726123) AND t <= fromUnixTimestamp64Milli(1447328726456) and toDateTime(1415792726) <= x and x <= fromUnixTimestamp64Milli(1447328726456)",
        ),
        (
            "select $__timeInterval(col), $__timeInterval_ms(col), $__interval_s",
            "select toStartOfInterval(toDateTime(col), INTERVAL 20 second), toStartOfInterval(toDateTime64(col, 3), INTERVAL 20000 millisecond), 20",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(macros(input, range).unwrap(), want);
    }
    assert!(macros("$__timeFilter(a, b)", range).is_err());
    assert!(macros("$__timeFilter(a", range).is_err());
    assert!(macros("$__timeFrom(a)", range).is_err());
    let sub_second = TimeRange {
        interval_ms: 200,
        ..range
    };
    assert_eq!(macros("$__interval_s", sub_second).unwrap(), "1");
}

#[test]
fn variables_and_conditional_all_expand_like_grafana() {
    let vars: Variables = [
        ("monitor", Selection::Many(vec!["a".into(), "o'b".into()])),
        ("region", Selection::All(vec!["eu".into(), "us".into()])),
        ("rollup", Selection::One("windows_1m".into())),
        ("tag", Selection::Many(vec![])),
    ]
    .into();
    let sql = "FROM $rollup WHERE $__conditionalAll(m IN (${monitor:singlequote}), $monitor) \
               AND $__conditionalAll(r IN (${region:singlequote}), $region) \
               AND $__conditionalAll(hasAny(t, [${tag:singlequote}]), ${tag}) AND r2 IN ($region) \
               AND $__timeFilter(x)";
    assert_eq!(
        template(&conditional_all(sql, &vars).unwrap(), &vars).unwrap(),
        "FROM windows_1m WHERE m IN ('a','o\\'b') AND 1=1 AND 1=1 AND r2 IN ('eu','us') \
         AND $__timeFilter(x)"
    );
    assert!(conditional_all("$__conditionalAll(a, $nope)", &vars).is_err());
}

// --- seeded data ------------------------------------------------------------------------------

/// 2026-11-20T10:00:00Z: the dashboards' time range is this hour.
const T0: i64 = 1_795_168_800;
const MINUTE: i64 = 60;
const HOUR: i64 = 3600;

#[derive(Debug, Clone)]
struct Window {
    monitor: &'static str,
    region: &'static str,
    start: i64,
    duration: i64,
    count: u64,
    ok: u64,
    errors: BTreeMap<&'static str, u64>,
    status: [u64; 5],
    dns: f64,
    connect: f64,
    tls: f64,
    ttfb: f64,
    /// Checks that had each phase (dns, connect, tls, ttfb): the weights of the means.
    phase_counts: [u64; 4],
    sketch: Sketch,
    anomaly_latency: f64,
    anomaly_errors: f64,
    anomaly_score: f64,
    reason: String,
}

struct MonitorRow {
    id: &'static str,
    name: &'static str,
    tags: &'static [&'static str],
    deleted: bool,
}

const MONITORS: [MonitorRow; 4] = [
    MonitorRow {
        id: "api",
        name: "Public API",
        tags: &["prod", "public"],
        deleted: false,
    },
    MonitorRow {
        id: "web",
        name: "Website",
        tags: &["prod"],
        deleted: false,
    },
    MonitorRow {
        id: "batch",
        name: "",
        tags: &["internal"],
        deleted: false,
    },
    MonitorRow {
        id: "old",
        name: "Retired",
        tags: &["prod", "legacy"],
        deleted: true,
    },
];

const REGIONS: [(&str, &[&str]); 3] = [
    ("api", &["eu", "us"]),
    ("web", &["eu", "us"]),
    ("batch", &["eu"]),
];

/// One minute window of `monitor` in `region`, starting `minute` minutes after [`T0`].
fn minute_window(
    mi: usize,
    monitor: &'static str,
    ri: usize,
    region: &'static str,
    minute: i64,
) -> Window {
    let k = minute.rem_euclid(60) as u64;
    let base = [20_000.0, 50_000.0, 400_000.0][mi];
    let n = 10 + k;
    let mut sketch = Sketch::new(0.01);
    for j in 0..n {
        let mut v = base * (1.0 + j as f64 / 10.0) + 5_000.0 * ri as f64;
        if k.is_multiple_of(5) && j == 0 {
            v *= 10.0;
        }
        sketch.add(v);
    }
    let timeouts = u64::from(k % 4 == 1);
    let http = if k % 6 == 3 { 2 } else { 0 };
    let mut errors = BTreeMap::new();
    if timeouts > 0 {
        errors.insert("timeout", timeouts);
    }
    if http > 0 {
        errors.insert("http_status", http);
    }
    let ok = n - timeouts - http;
    let redirects = u64::from(k % 5 == 2);
    let anomaly_latency = ((k * 7 + mi as u64 * 3 + ri as u64) % 10) as f64 / 10.0;
    let anomaly_errors = ((k * 3 + mi as u64) % 10) as f64 / 10.0;
    let anomaly_score = anomaly_latency.max(anomaly_errors);
    Window {
        monitor,
        region,
        start: T0 + minute * MINUTE,
        duration: MINUTE,
        count: n,
        ok,
        errors,
        status: [0, ok - redirects, redirects, 0, http],
        dns: 1_000.0 + 10.0 * k as f64,
        connect: 2_000.0 + 100.0 * mi as f64,
        tls: if monitor == "batch" {
            0.0
        } else {
            3_000.0 + 500.0 * ri as f64
        },
        ttfb: base / 2.0 + k as f64,
        phase_counts: [
            n - 2 * u64::from(k.is_multiple_of(3)),
            n,
            if monitor == "batch" { 0 } else { n },
            n - timeouts,
        ],
        sketch,
        anomaly_latency,
        anomaly_errors,
        anomaly_score,
        reason: if anomaly_score >= 0.8 {
            format!("{monitor}/{region} minute {k}: score {anomaly_score}")
        } else {
            String::new()
        },
    }
}

/// Minute windows: minutes 0..12 of the hour, plus one before and one after the time range.
fn minute_windows() -> Vec<Window> {
    let mut out = Vec::new();
    for (mi, (monitor, regions)) in REGIONS.iter().enumerate() {
        for (ri, region) in regions.iter().enumerate() {
            for minute in (0..12).chain([-5, 125]) {
                out.push(minute_window(mi, monitor, ri, region, minute));
            }
        }
    }
    out
}

/// Hourly rollups: the minute windows merged per (monitor, region, hour).
fn hour_windows(minutes: &[Window]) -> Vec<Window> {
    let mut groups: BTreeMap<(&str, &str, i64), Vec<&Window>> = BTreeMap::new();
    for w in minutes {
        groups
            .entry((w.monitor, w.region, w.start.div_euclid(HOUR) * HOUR))
            .or_default()
            .push(w);
    }
    groups
        .into_iter()
        .map(|((monitor, region, start), rows)| {
            let a = Agg::of(&rows);
            let best = rows
                .iter()
                .max_by(|x, y| x.anomaly_score.total_cmp(&y.anomaly_score))
                .unwrap();
            Window {
                monitor,
                region,
                start,
                duration: HOUR,
                count: a.count,
                ok: a.ok,
                errors: a.errors.clone(),
                status: a.status,
                dns: a.phase_mean(0),
                connect: a.phase_mean(1),
                tls: a.phase_mean(2),
                ttfb: a.phase_mean(3),
                phase_counts: a.phase_counts,
                sketch: a.sketch.clone(),
                anomaly_latency: a.max_latency,
                anomaly_errors: a.max_errors,
                anomaly_score: a.max_score,
                reason: best.reason.clone(),
            }
        })
        .collect()
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn window_values(w: &Window, version: u64) -> String {
    let data = w.sketch.to_data();
    let q = |q: f64| w.sketch.quantile(q).unwrap_or(0.0);
    let errors: Vec<String> = w
        .errors
        .iter()
        .map(|(k, v)| format!("{}, {v}", sql_str(k)))
        .collect();
    let values = [
        sql_str(w.monitor),
        sql_str(w.region),
        format!("fromUnixTimestamp64Milli({})", w.start * 1000),
        format!(
            "fromUnixTimestamp64Milli({})",
            (w.start + w.duration) * 1000
        ),
        version.to_string(),
        w.count.to_string(),
        w.ok.to_string(),
        (w.ok as f64 / w.count as f64).to_string(),
        format!("map({})", errors.join(", ")),
        w.status.map(|n| n.to_string()).join(", "),
        [0.5, 0.75, 0.9, 0.95, 0.99, 0.999]
            .map(|p| q(p).to_string())
            .join(", "),
        [w.dns, w.connect, w.tls, w.ttfb]
            .map(|m| m.to_string())
            .join(", "),
        w.phase_counts.map(|n| n.to_string()).join(", "),
        (q(0.0) as u64).to_string(),
        (q(1.0) as u64).to_string(),
        w.ttfb.to_string(),
        data.alpha.to_string(),
        format!("{:?}", data.keys),
        format!("{:?}", data.counts),
        data.zero_count.to_string(),
        w.anomaly_latency.to_string(),
        w.anomaly_errors.to_string(),
        w.anomaly_score.to_string(),
        sql_str(&w.reason),
    ];
    format!("({})", values.join(", "))
}

const WINDOW_COLUMNS: &str = "monitor_id, region, window_start, window_end, version, count, \
    ok_count, availability, errors, status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, \
    p50_us, p75_us, p90_us, p95_us, p99_us, p999_us, dns_mean_us, connect_mean_us, tls_mean_us, \
    ttfb_mean_us, dns_count, connect_count, tls_count, ttfb_count, total_min_us, total_max_us, ttfb_p95_us, sketch_alpha, sketch_keys, \
    sketch_counts, sketch_zero_count, anomaly_latency, anomaly_errors, anomaly_score, \
    anomaly_reason";

async fn insert_windows(client: &Client, table: &str, windows: &[Window]) {
    // An older version of the first window with other numbers: panels that forget FINAL sum it.
    let mut stale = windows.iter().find(|w| w.start == T0).unwrap().clone();
    stale.count = 999;
    stale.ok = 1;
    stale.status = [0, 1, 0, 0, 998];
    stale.sketch.add_n(9_000_000.0, 500);
    // Separate inserts: one block would be collapsed on insert (`optimize_on_insert`).
    let stale = window_values(&stale, 1);
    let current: Vec<String> = windows.iter().map(|w| window_values(w, 2)).collect();
    for values in [stale, current.join(", ")] {
        client
            .query_raw(&format!(
                "INSERT INTO {table} ({WINDOW_COLUMNS}) VALUES {values}"
            ))
            .execute()
            .await
            .unwrap();
    }
}

struct Probe {
    monitor: &'static str,
    region: &'static str,
    at: i64,
    url: &'static str,
    /// Seconds from now, `None` for plain HTTP.
    expiry_in: Option<i64>,
}

const PROBES: [Probe; 7] = [
    Probe {
        monitor: "api",
        region: "eu",
        at: T0 + MINUTE,
        url: "https://api.example.com/v1",
        expiry_in: Some(40 * 86_400),
    },
    Probe {
        monitor: "api",
        region: "eu",
        at: T0 + 10 * MINUTE,
        url: "https://api.example.com/v2",
        expiry_in: Some(30 * 86_400),
    },
    Probe {
        monitor: "api",
        region: "us",
        at: T0 + 5 * MINUTE,
        url: "https://us.api.example.com/v2",
        expiry_in: Some(45 * 86_400),
    },
    Probe {
        monitor: "web",
        region: "eu",
        at: T0 + 3 * MINUTE,
        url: "https://www.example.com/",
        expiry_in: Some(10 * 86_400),
    },
    Probe {
        monitor: "web",
        region: "us",
        at: T0 - HOUR,
        url: "https://www.example.com/",
        expiry_in: Some(86_400),
    },
    Probe {
        monitor: "web",
        region: "us",
        at: T0 + 4 * MINUTE,
        url: "https://www.example.com/",
        expiry_in: Some(12 * 86_400),
    },
    Probe {
        monitor: "batch",
        region: "eu",
        at: T0 + 2 * MINUTE,
        url: "http://batch.internal/health",
        expiry_in: None,
    },
];

struct Seed {
    minutes: Vec<Window>,
    hours: Vec<Window>,
    /// Alert transitions, as the pipeline produced and the sink wrote them.
    transitions: Vec<vigil_schema::AlertTransition>,
    /// Unix seconds when the probes were written (certificate expiries are relative to it).
    now: i64,
}

async fn seed(client: &Client) -> Seed {
    let minutes = minute_windows();
    let hours = hour_windows(&minutes);
    insert_windows(client, "windows_1m", &minutes).await;
    insert_windows(client, "windows_1h", &hours).await;

    monitors(client).await;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let probes: Vec<String> = PROBES
        .iter()
        .map(|p| {
            let expiry = p.expiry_in.map_or("NULL".to_owned(), |s| {
                format!("fromUnixTimestamp64Milli({})", (now + s) * 1000)
            });
            format!(
                "(generateUUIDv4(), {}, {}, 'agent-1', fromUnixTimestamp64Milli({ms}), \
                 fromUnixTimestamp64Milli({ms}), 'GET', {}, 200, 'ok', '', 120000, {expiry})",
                sql_str(p.monitor),
                sql_str(p.region),
                sql_str(p.url),
                ms = p.at * 1000,
            )
        })
        .collect();
    client
        .query_raw(&format!(
            "INSERT INTO probes (event_id, monitor_id, region, agent, scheduled_at, event_time, \
             method, url, status_code, outcome, error, total_us, tls_cert_expiry) VALUES {}",
            probes.join(", ")
        ))
        .execute()
        .await
        .unwrap();

    let transitions = alerts::seed(client).await;
    Seed {
        minutes,
        hours,
        transitions,
        now,
    }
}

/// The spec `vigil apply` would write for one monitor.
fn monitor_spec(id: &str, name: &str, tags: &[&str]) -> MonitorSpec {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": name, "tags": tags, "url": format!("https://{id}.example.com"),
    }))
    .unwrap()
}

/// Fills `monitors` the way production does: specs are applied to a monitors topic as
/// `vigil apply` applies them, and the processor's follower materializes the topic. Three
/// applies, each waited for so that it lands in its own insert: `api` under an older name and
/// tag, then every monitor of [`MONITORS`] (superseding that `api`), then the deletion of those
/// marked deleted. The superseded and deleted versions must not show through `FINAL`.
async fn monitors(client: &Client) {
    let kafka = KafkaConnection {
        brokers: kafka_brokers(),
        topics: TopicNames::with_prefix(&unique_name("it", "grafana")),
        request_timeout: Duration::from_secs(10),
    };
    let admin: AdminClient<DefaultClientContext> = kafka_config().create().unwrap();
    vigil_schema::kafka::ensure_topics(&admin, &kafka.topics.specs(), kafka.request_timeout, 1)
        .await
        .unwrap();
    let token = CancellationToken::new();
    let follower = {
        let (brokers, topic) = (kafka.brokers.clone(), kafka.topics.monitors.clone());
        let (client, token) = (client.clone(), token.clone());
        tokio::spawn(async move {
            vigil_processor::monitors_table::run(&brokers, &topic, client, token).await
        })
    };

    #[derive(Debug, Row, Deserialize, PartialEq)]
    struct Current {
        monitor_id: String,
        name: String,
        tags: Vec<String>,
        deleted: bool,
    }
    let wait_for = |want: Vec<Current>| async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows: Vec<Current> = client
                .query(
                    "SELECT monitor_id, name, tags, deleted FROM monitors FINAL \
                     ORDER BY monitor_id",
                )
                .fetch_all()
                .await
                .unwrap();
            if rows == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "monitors table: {rows:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let current = |specs: &[(&str, &str, &[&str], bool)]| -> Vec<Current> {
        let mut rows: Vec<Current> = specs
            .iter()
            .map(|&(id, name, tags, deleted)| Current {
                monitor_id: id.to_owned(),
                name: if deleted {
                    String::new()
                } else {
                    name.to_owned()
                },
                tags: if deleted {
                    Vec::new()
                } else {
                    tags.iter().map(|t| (*t).to_owned()).collect()
                },
                deleted,
            })
            .collect();
        rows.sort_by(|a, b| a.monitor_id.cmp(&b.monitor_id));
        rows
    };

    let old_api = monitor_spec("api", "API (old name)", &["old"]);
    Plan::new(&[], std::slice::from_ref(&old_api), false)
        .apply(&kafka, kafka.request_timeout)
        .await
        .unwrap();
    wait_for(current(&[("api", "API (old name)", &["old"], false)])).await;

    let specs: Vec<MonitorSpec> = MONITORS
        .iter()
        .map(|m| monitor_spec(m.id, m.name, m.tags))
        .collect();
    let plan = Plan::new(&[Arc::new(old_api)], &specs, false);
    assert_eq!(plan.changes.len(), MONITORS.len(), "{plan:?}");
    plan.apply(&kafka, kafka.request_timeout).await.unwrap();
    let all: Vec<(&str, &str, &[&str], bool)> = MONITORS
        .iter()
        .map(|m| (m.id, m.name, m.tags, false))
        .collect();
    wait_for(current(&all)).await;

    let applied: Vec<Arc<MonitorSpec>> = specs.iter().cloned().map(Arc::new).collect();
    let kept: Vec<MonitorSpec> = specs
        .into_iter()
        .zip(&MONITORS)
        .filter(|(_, m)| !m.deleted)
        .map(|(spec, _)| spec)
        .collect();
    let prune = Plan::new(&applied, &kept, true);
    let deletes: Vec<Change> = MONITORS
        .iter()
        .filter(|m| m.deleted)
        .map(|m| Change::Delete(m.id.to_owned()))
        .collect();
    assert!(!deletes.is_empty());
    assert_eq!(prune.changes, deletes);
    prune.apply(&kafka, kafka.request_timeout).await.unwrap();
    let end: Vec<(&str, &str, &[&str], bool)> = MONITORS
        .iter()
        .map(|m| (m.id, m.name, m.tags, m.deleted))
        .collect();
    wait_for(current(&end)).await;

    token.cancel();
    follower.await.unwrap().unwrap();
}

// --- expected results -------------------------------------------------------------------------

/// A result cell, typed by its ClickHouse column type.
#[derive(Debug, Clone)]
enum Cell {
    /// `DateTime…`: unix milliseconds.
    Time(i64),
    Str(String),
    Float(f64),
    UInt(u64),
    /// `Map(…)`, as the JSON object ClickHouse writes.
    Json(Value),
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Cell::Time(a), Cell::Time(b)) => a == b,
            (Cell::Str(a), Cell::Str(b)) => a == b,
            (Cell::UInt(a), Cell::UInt(b)) => a == b,
            (Cell::Json(a), Cell::Json(b)) => a == b,
            (Cell::Float(a), Cell::Float(b)) => {
                (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
            }
            _ => false,
        }
    }
}

fn parse_time(text: &str) -> i64 {
    let format = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let t = time::PrimitiveDateTime::parse(text, &format)
        .unwrap_or_else(|e| panic!("bad DateTime {text}: {e}"));
    (t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn cell(value: &Value, ty: &str) -> Cell {
    let base = ty
        .trim_start_matches("LowCardinality(")
        .trim_start_matches("Nullable(");
    if base.starts_with("DateTime") {
        Cell::Time(parse_time(value.as_str().unwrap()))
    } else if base.starts_with("String") || base.starts_with("UUID") {
        Cell::Str(value.as_str().unwrap().to_owned())
    } else if base.starts_with("Float") {
        Cell::Float(value.as_f64().unwrap_or(f64::NAN))
    } else if base.starts_with("Map(") {
        Cell::Json(value.clone())
    } else if base.starts_with("UInt") {
        Cell::UInt(match value {
            Value::String(s) => s.parse().unwrap(),
            other => other.as_u64().unwrap(),
        })
    } else {
        panic!("unexpected column type {ty}")
    }
}

/// Columns (name, type) and rows of a query result.
type Table = (Vec<(String, String)>, Vec<Vec<Cell>>);

async fn run(client: &Client, sql: &str) -> Table {
    let bytes = client
        .query_raw(sql)
        .fetch_bytes("JSONCompactEachRowWithNamesAndTypes")
        .unwrap()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- query ---\n{sql}"));
    let mut lines = std::str::from_utf8(&bytes).unwrap().lines();
    let names: Vec<String> = serde_json::from_str(lines.next().unwrap()).unwrap();
    let types: Vec<String> = serde_json::from_str(lines.next().unwrap()).unwrap();
    let rows = lines
        .map(|line| {
            let values: Vec<Value> = serde_json::from_str(line).unwrap();
            values.iter().zip(&types).map(|(v, t)| cell(v, t)).collect()
        })
        .collect();
    (names.into_iter().zip(types).collect(), rows)
}

/// Aggregates of a group of windows, as the panels compute them.
#[derive(Debug, Clone)]
struct Agg {
    count: u64,
    ok: u64,
    errors: BTreeMap<&'static str, u64>,
    status: [u64; 5],
    /// dns, connect, tls, ttfb: time per check (phase means weighted by the checks that had
    /// the phase, over all checks).
    phases: [f64; 4],
    /// Sum of each phase's mean times its weight.
    phase_weighted: [f64; 4],
    /// Checks that had each phase.
    phase_counts: [u64; 4],
    sketch: Sketch,
    max_latency: f64,
    max_errors: f64,
    max_score: f64,
    /// Highest score among the latest windows, and their start.
    latest: (i64, f64),
}

impl Agg {
    fn of(rows: &[&Window]) -> Self {
        let mut sketch = Sketch::new(0.01);
        let mut a = Agg {
            count: 0,
            ok: 0,
            errors: BTreeMap::new(),
            status: [0; 5],
            phases: [0.0; 4],
            phase_weighted: [0.0; 4],
            phase_counts: [0; 4],
            sketch: Sketch::new(0.01),
            max_latency: f64::MIN,
            max_errors: f64::MIN,
            max_score: f64::MIN,
            latest: (i64::MIN, f64::MIN),
        };
        for w in rows {
            a.count += w.count;
            a.ok += w.ok;
            for (k, v) in &w.errors {
                *a.errors.entry(k).or_insert(0) += v;
            }
            for i in 0..5 {
                a.status[i] += w.status[i];
            }
            for (i, m) in [w.dns, w.connect, w.tls, w.ttfb].into_iter().enumerate() {
                a.phase_weighted[i] += m * w.phase_counts[i] as f64;
                a.phase_counts[i] += w.phase_counts[i];
            }
            sketch.merge(&w.sketch).unwrap();
            a.max_latency = a.max_latency.max(w.anomaly_latency);
            a.max_errors = a.max_errors.max(w.anomaly_errors);
            a.max_score = a.max_score.max(w.anomaly_score);
            if (w.start, w.anomaly_score) > a.latest {
                a.latest = (w.start, w.anomaly_score);
            }
        }
        a.phases = a.phase_weighted.map(|s| s / a.count as f64);
        a.sketch = sketch;
        a
    }

    /// The mean of a phase over the checks that had it (a rollup's stored mean).
    fn phase_mean(&self, i: usize) -> f64 {
        if self.phase_counts[i] == 0 {
            0.0
        } else {
            self.phase_weighted[i] / self.phase_counts[i] as f64
        }
    }

    fn q(&self, q: f64) -> Cell {
        Cell::Float(self.sketch.quantile(q).unwrap_or(f64::NAN))
    }

    fn availability(&self) -> Cell {
        Cell::Float(self.ok as f64 / self.count as f64)
    }
}

/// What one run of a dashboard selects.
#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    /// The drill-down's panels filter by the one monitor only; `tag` narrows its variable.
    drilldown: bool,
    hourly: bool,
    interval: i64,
    tags: Option<Vec<&'static str>>,
    monitors: Option<Vec<&'static str>>,
    regions: Option<Vec<&'static str>>,
}

impl Scenario {
    fn range(&self) -> TimeRange {
        TimeRange {
            from_ms: T0 * 1000,
            to_ms: (T0 + HOUR - 1) * 1000 + 999,
            interval_ms: self.interval * 1000,
        }
    }

    fn monitor_selected(&self, id: &str) -> bool {
        let by_tag = self.drilldown
            || self.tags.as_ref().is_none_or(|tags| {
                MONITORS
                    .iter()
                    .any(|m| m.id == id && m.tags.iter().any(|t| tags.contains(t)))
            });
        by_tag && self.monitors.as_ref().is_none_or(|m| m.contains(&id))
    }

    fn region_selected(&self, region: &str) -> bool {
        self.regions.as_ref().is_none_or(|r| r.contains(&region))
    }

    fn in_range(&self, t: i64) -> bool {
        let r = self.range();
        t >= r.from_ms.div_euclid(1000) && t <= r.to_ms.div_euclid(1000)
    }

    fn windows<'a>(&self, seed: &'a Seed) -> Vec<&'a Window> {
        let table = if self.hourly {
            &seed.hours
        } else {
            &seed.minutes
        };
        table
            .iter()
            .filter(|w| {
                self.in_range(w.start)
                    && self.monitor_selected(w.monitor)
                    && self.region_selected(w.region)
            })
            .collect()
    }

    fn bucket(&self, t: i64) -> i64 {
        t.div_euclid(self.interval) * self.interval
    }

    fn variables(&self) -> Variables {
        let many = |sel: &Option<Vec<&'static str>>, all: &[&str]| match sel {
            None => Selection::All(all.iter().map(|s| s.to_string()).collect()),
            Some(v) => Selection::Many(v.iter().map(|s| s.to_string()).collect()),
        };
        let mut vars: Variables = [
            (
                "rollup",
                Selection::One(
                    if self.hourly {
                        "windows_1h"
                    } else {
                        "windows_1m"
                    }
                    .into(),
                ),
            ),
            ("tag", many(&self.tags, &["internal", "prod", "public"])),
            ("region", many(&self.regions, &["eu", "us"])),
        ]
        .into();
        let monitor = match &self.monitors {
            Some(one) if self.drilldown => Selection::One(one[0].to_owned()),
            selection => many(selection, &["api", "batch", "web"]),
        };
        vars.insert("monitor", monitor);
        vars
    }
}

/// Groups windows by a key (ordered), aggregating each group.
fn grouped<K: Ord>(windows: &[&Window], key: impl Fn(&Window) -> K) -> BTreeMap<K, Agg> {
    let mut groups: BTreeMap<K, Vec<&Window>> = BTreeMap::new();
    for w in windows {
        groups.entry(key(w)).or_default().push(w);
    }
    groups
        .into_iter()
        .map(|(k, rows)| (k, Agg::of(&rows)))
        .collect()
}

fn cols(spec: &[(&str, &str)]) -> Vec<(String, String)> {
    spec.iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect()
}

const TIME: (&str, &str) = ("time", "DateTime('UTC')");
const F64: &str = "Float64";
const U64: &str = "UInt64";
const LC: &str = "LowCardinality(String)";
const DT64: &str = "DateTime64(3, 'UTC')";

fn t(seconds: i64) -> Cell {
    Cell::Time(seconds * 1000)
}

fn s(text: &str) -> Cell {
    Cell::Str(text.to_owned())
}

fn f(value: f64) -> Cell {
    Cell::Float(value)
}

/// The expected result of a panel (by dashboard and title) in a scenario.
fn expected(dashboard: &str, title: &str, sc: &Scenario, seed: &Seed) -> Table {
    let ws = sc.windows(seed);
    let by_bucket = || grouped(&ws, |w| sc.bucket(w.start));
    let by_bucket_and =
        |key: fn(&Window) -> &'static str| grouped(&ws, move |w| (sc.bucket(w.start), key(w)));
    let whole = || Agg::of(&ws);
    match (dashboard, title) {
        ("vigil-overview", "Latency percentiles") => (
            cols(&[TIME, ("p50", F64), ("p95", F64), ("p99", F64)]),
            by_bucket()
                .iter()
                .map(|(b, a)| vec![t(*b), a.q(0.5), a.q(0.95), a.q(0.99)])
                .collect(),
        ),
        ("vigil-monitor", "Latency percentiles") => (
            cols(&[
                TIME,
                ("p50", F64),
                ("p90", F64),
                ("p95", F64),
                ("p99", F64),
                ("p999", F64),
            ]),
            by_bucket()
                .iter()
                .map(|(b, a)| vec![t(*b), a.q(0.5), a.q(0.9), a.q(0.95), a.q(0.99), a.q(0.999)])
                .collect(),
        ),
        (_, "p95 by monitor") => (
            cols(&[TIME, ("monitor_id", LC), ("p95", F64)]),
            by_bucket_and(|w| w.monitor)
                .iter()
                .map(|((b, m), a)| vec![t(*b), s(m), a.q(0.95)])
                .collect(),
        ),
        (_, "p95 by region") => (
            cols(&[TIME, ("region", LC), ("p95", F64)]),
            by_bucket_and(|w| w.region)
                .iter()
                .map(|((b, r), a)| vec![t(*b), s(r), a.q(0.95)])
                .collect(),
        ),
        (_, "Availability by monitor") => (
            cols(&[TIME, ("monitor_id", LC), ("availability", F64)]),
            by_bucket_and(|w| w.monitor)
                .iter()
                .map(|((b, m), a)| vec![t(*b), s(m), a.availability()])
                .collect(),
        ),
        (_, "Availability by region") => (
            cols(&[TIME, ("region", LC), ("availability", F64)]),
            by_bucket_and(|w| w.region)
                .iter()
                .map(|((b, r), a)| vec![t(*b), s(r), a.availability()])
                .collect(),
        ),
        (_, "Status classes") => (
            cols(&[
                TIME,
                ("1xx", U64),
                ("2xx", U64),
                ("3xx", U64),
                ("4xx", U64),
                ("5xx", U64),
            ]),
            by_bucket()
                .iter()
                .map(|(b, a)| {
                    let mut row = vec![t(*b)];
                    row.extend(a.status.iter().map(|&n| Cell::UInt(n)));
                    row
                })
                .collect(),
        ),
        (_, "Failures by kind") => (
            cols(&[TIME, ("kind", "String"), ("failures", U64)]),
            by_bucket()
                .iter()
                .flat_map(|(b, a)| {
                    a.errors
                        .iter()
                        .map(|(k, n)| vec![t(*b), s(k), Cell::UInt(*n)])
                        .collect::<Vec<_>>()
                })
                .collect(),
        ),
        (_, "Timing phases") => (
            cols(&[
                TIME,
                ("dns", F64),
                ("connect", F64),
                ("tls", F64),
                ("ttfb", F64),
            ]),
            by_bucket()
                .iter()
                .map(|(b, a)| {
                    let mut row = vec![t(*b)];
                    row.extend(a.phases.iter().map(|&m| f(m)));
                    row
                })
                .collect(),
        ),
        (_, "Anomaly score by monitor") => (
            cols(&[TIME, ("monitor_id", LC), ("anomaly_score", F64)]),
            by_bucket_and(|w| w.monitor)
                .iter()
                .map(|((b, m), a)| vec![t(*b), s(m), f(a.max_score)])
                .collect(),
        ),
        (_, "Anomaly scores") => (
            cols(&[TIME, ("latency", F64), ("errors", F64), ("combined", F64)]),
            by_bucket()
                .iter()
                .map(|(b, a)| vec![t(*b), f(a.max_latency), f(a.max_errors), f(a.max_score)])
                .collect(),
        ),
        (_, "Monitors") => {
            let mut rows: Vec<(f64, &str, Agg)> = grouped(&ws, |w| w.monitor)
                .into_iter()
                .map(|(m, a)| (a.sketch.quantile(0.95).unwrap(), m, a))
                .collect();
            rows.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(y.1)));
            (
                cols(&[
                    ("monitor", LC),
                    ("name", "String"),
                    ("tags", "String"),
                    ("p95", F64),
                    ("availability", F64),
                    ("anomaly_score", F64),
                    ("last_window", DT64),
                ]),
                rows.into_iter()
                    .map(|(p95, m, a)| {
                        let spec = MONITORS.iter().find(|x| x.id == m).unwrap();
                        vec![
                            s(m),
                            s(spec.name),
                            s(&spec.tags.join(", ")),
                            f(p95),
                            a.availability(),
                            f(a.latest.1),
                            t(a.latest.0),
                        ]
                    })
                    .collect(),
            )
        }
        (_, "p95 over the range") => (cols(&[("p95", F64)]), vec![vec![whole().q(0.95)]]),
        (_, "Availability over the range") => (
            cols(&[("availability", F64)]),
            vec![vec![whole().availability()]],
        ),
        (_, "Checks") => (
            cols(&[("checks", U64)]),
            vec![vec![Cell::UInt(whole().count)]],
        ),
        (_, "Latest anomaly score") => (
            cols(&[("anomaly_score", F64)]),
            vec![vec![f(whole().latest.1)]],
        ),
        (_, "Anomalous windows") => {
            let mut rows: Vec<&&Window> = ws.iter().filter(|w| !w.reason.is_empty()).collect();
            rows.sort_by(|x, y| {
                y.anomaly_score
                    .total_cmp(&x.anomaly_score)
                    .then(y.start.cmp(&x.start))
                    .then(x.region.cmp(y.region))
            });
            rows.truncate(50);
            (
                cols(&[
                    ("time", DT64),
                    ("region", LC),
                    ("anomaly_score", F64),
                    ("reason", "String"),
                ]),
                rows.into_iter()
                    .map(|w| vec![t(w.start), s(w.region), f(w.anomaly_score), s(&w.reason)])
                    .collect(),
            )
        }
        (dashboard, "Certificate expiry") => {
            let per_monitor = dashboard == "vigil-overview";
            let mut latest: BTreeMap<&str, &Probe> = BTreeMap::new();
            for p in PROBES.iter().filter(|p| {
                p.expiry_in.is_some()
                    && sc.in_range(p.at)
                    && sc.monitor_selected(p.monitor)
                    && sc.region_selected(p.region)
            }) {
                let key = if per_monitor { p.monitor } else { p.region };
                if latest.get(key).is_none_or(|q| q.at < p.at) {
                    latest.insert(key, p);
                }
            }
            let mut rows: Vec<(&str, &Probe)> = latest.into_iter().collect();
            rows.sort_by_key(|(key, p)| (p.expiry_in, *key));
            let first = if per_monitor {
                ("monitor", LC)
            } else {
                ("region", LC)
            };
            (
                cols(&[
                    first,
                    ("url", "String"),
                    ("expires_at", DT64),
                    ("days_left", F64),
                ]),
                rows.into_iter()
                    .map(|(key, p)| {
                        let expiry = p.expiry_in.unwrap();
                        let days = (expiry as f64 / 86_400.0 * 10.0).round() / 10.0;
                        vec![s(key), s(p.url), t(seed.now + expiry), f(days)]
                    })
                    .collect(),
            )
        }
        (dashboard, "annotation Alerts") => alerts::annotations(dashboard, sc, seed),
        (dashboard, "Active alerts") => alerts::active(dashboard, sc, seed),
        ("vigil-overview", "variable region") | ("vigil-monitor", "variable region") => {
            let regions: BTreeSet<&str> = seed
                .minutes
                .iter()
                .filter(|w| {
                    sc.in_range(w.start)
                        && (dashboard == "vigil-overview"
                            || sc.monitors.as_ref().is_some_and(|m| m == &[w.monitor]))
                })
                .map(|w| w.region)
                .collect();
            (
                cols(&[("region", LC)]),
                regions.into_iter().map(|r| vec![s(r)]).collect(),
            )
        }
        (_, "variable tag") => {
            let tags: BTreeSet<&str> = MONITORS
                .iter()
                .filter(|m| !m.deleted)
                .flat_map(|m| m.tags.iter().copied())
                .collect();
            (
                cols(&[("tag", LC)]),
                tags.into_iter().map(|t| vec![s(t)]).collect(),
            )
        }
        (_, "variable monitor") => {
            let mut rows: Vec<&MonitorRow> = MONITORS
                .iter()
                .filter(|m| {
                    !m.deleted
                        && sc
                            .tags
                            .as_ref()
                            .is_none_or(|tags| m.tags.iter().any(|t| tags.contains(t)))
                })
                .collect();
            rows.sort_by_key(|m| m.id);
            (
                cols(&[("monitor_id", "String"), ("name", "String")]),
                rows.into_iter()
                    .map(|m| vec![s(m.id), s(if m.name.is_empty() { m.id } else { m.name })])
                    .collect(),
            )
        }
        (dashboard, title) => panic!("{dashboard}: no expectation for {title:?}"),
    }
}

const TIME_DT64: (&str, &str) = ("time", DT64);

// --- the test ---------------------------------------------------------------------------------

/// `(title, sql, is time series)` of every query of a dashboard.
fn queries(dashboard: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["rawSql"].as_str().unwrap().to_owned(),
                target["format"] == 0,
            ));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            out.push((
                format!("variable {}", variable["name"].as_str().unwrap()),
                variable["query"].as_str().unwrap().to_owned(),
                false,
            ));
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        if let Some(sql) = annotation["target"]["rawSql"].as_str() {
            out.push((
                format!("annotation {}", annotation["name"].as_str().unwrap()),
                sql.to_owned(),
                false,
            ));
        }
    }
    out
}

fn load_dashboard(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docker/grafana/dashboards")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn check_dashboard(client: &Client, seed: &Seed, file: &str, scenarios: &[Scenario]) {
    let dashboard = load_dashboard(file);
    let uid = dashboard["uid"].as_str().unwrap();
    let mut with_rows = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for sc in scenarios {
        let sc = &Scenario {
            drilldown: uid == "vigil-monitor",
            ..sc.clone()
        };
        for (title, raw, time_series) in queries(&dashboard) {
            let sql = expand(&raw, &sc.variables(), sc.range())
                .unwrap_or_else(|e| panic!("{uid} / {title}: {e}"));
            let (columns, rows) = run(client, &sql).await;
            let (want_columns, want_rows) = expected(uid, &title, sc, seed);
            let context = format!("{uid} / {title} / {}", sc.name);
            assert_eq!(columns, want_columns, "{context}: columns");
            if time_series {
                assert!(
                    columns[0].0 == "time" && columns[0].1.starts_with("DateTime"),
                    "{context}: time column first"
                );
            }
            titles.insert(title.clone());
            if !want_rows.is_empty() {
                with_rows.insert(title.clone());
            }
            assert_eq!(rows.len(), want_rows.len(), "{context}: rows {rows:?}");
            for (i, (got, want)) in rows.iter().zip(&want_rows).enumerate() {
                if title == "Certificate expiry" {
                    // days_left is relative to the server's now(): allow for the test's run time.
                    assert_eq!(got[..3], want[..3], "{context}: row {i}");
                    let (Cell::Float(g), Cell::Float(w)) = (&got[3], &want[3]) else {
                        panic!("{context}: days_left");
                    };
                    assert!((g - w).abs() <= 0.1, "{context}: days_left {g} vs {w}");
                } else {
                    assert_eq!(got, want, "{context}: row {i}");
                }
            }
        }
    }
    assert_eq!(
        with_rows, titles,
        "{uid}: queries the seed never gives rows"
    );
}

#[tokio::test]
async fn every_dashboard_query_runs_on_seeded_windows() {
    let db = TestDb::new("grafana_dashboards").await;
    migrate(&clickhouse(), &db.name).await.unwrap();
    let seed = seed(&db.client).await;

    let overview = [
        Scenario {
            drilldown: false,
            name: "minutes, everything",
            hourly: false,
            interval: 300,
            tags: None,
            monitors: None,
            regions: None,
        },
        Scenario {
            drilldown: false,
            name: "minutes, tag prod in eu",
            hourly: false,
            interval: 300,
            tags: Some(vec!["prod"]),
            monitors: None,
            regions: Some(vec!["eu"]),
        },
        Scenario {
            drilldown: false,
            name: "hours, api and batch",
            hourly: true,
            interval: 3600,
            tags: None,
            monitors: Some(vec!["api", "batch"]),
            regions: None,
        },
    ];
    check_dashboard(&db.client, &seed, "overview.json", &overview).await;

    let monitor = [
        Scenario {
            drilldown: false,
            name: "minutes, api everywhere",
            hourly: false,
            interval: 300,
            tags: None,
            monitors: Some(vec!["api"]),
            regions: None,
        },
        Scenario {
            drilldown: false,
            name: "minutes, web in us, tag public",
            hourly: false,
            interval: 120,
            tags: Some(vec!["public"]),
            monitors: Some(vec!["web"]),
            regions: Some(vec!["us"]),
        },
        Scenario {
            drilldown: false,
            name: "hours, batch",
            hourly: true,
            interval: 3600,
            tags: None,
            monitors: Some(vec!["batch"]),
            regions: None,
        },
    ];
    check_dashboard(&db.client, &seed, "monitor.json", &monitor).await;
    db.drop_database().await;
}
