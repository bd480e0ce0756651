//! The Grafana dashboards, generated here and committed as JSON under
//! `docker/grafana/dashboards/`. The test fails when the committed files differ from what this
//! code generates; `VIGIL_BLESS=1 cargo test --test deploy` rewrites them.
//!
//! Generating the JSON keeps the percentile SQL identical to the schema crate's
//! [`quantile_sql`]: a panel never averages stored per-window percentiles, it merges the stored
//! sketch buckets of every window in its range and asks the merged sketch.
//!
//! Every panel query is written for the grafana-clickhouse-datasource plugin: the frontend applies
//! `$__conditionalAll(condition, $var)` and the template variables, the backend expands
//! `$__timeFilter(col)` and `$__timeInterval(col)`. `tests/it/grafana.rs` runs every query, so
//! expanded, against a real ClickHouse engine on seeded windows and on alert transitions produced
//! by the processor's pipeline.
//!
//! The "Active alerts" tables are the query API's active set
//! ([`active_alerts_sql`], `GET /api/v1/alerts/active`) as of the end of the time range.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vigil_query::service::active_alerts_sql;
use vigil_schema::sketch::quantile_sql;

/// The datasource every panel uses (provisioned by `docker/grafana/provisioning/datasources`).
pub(crate) const DATASOURCE_UID: &str = "vigil-clickhouse";
/// The plugin's type name.
pub(crate) const DATASOURCE_TYPE: &str = "grafana-clickhouse-datasource";

/// The percentiles the dashboards show, as `(placeholder, q)`.
const PERCENTILES: [(&str, f64); 5] = [
    ("{p50}", 0.5),
    ("{p90}", 0.9),
    ("{p95}", 0.95),
    ("{p99}", 0.99),
    ("{p999}", 0.999),
];

/// Filters by the `monitor`, `region` and `tag` variables of the overview. `All` drops a filter
/// altogether (`$__conditionalAll` becomes `1=1`), so the SQL does not carry every value.
const OVERVIEW_FILTER: &str = "$__conditionalAll(monitor_id IN (${monitor:singlequote}), $monitor)
  AND $__conditionalAll(region IN (${region:singlequote}), $region)
  AND $__conditionalAll(monitor_id IN (SELECT monitor_id FROM monitors FINAL WHERE hasAny(tags, [${tag:singlequote}])), $tag)";

/// The drill-down shows one monitor, in the selected regions.
const MONITOR_FILTER: &str = "monitor_id = ${monitor:singlequote}
  AND $__conditionalAll(region IN (${region:singlequote}), $region)";

/// A generated dashboard file.
#[derive(Debug)]
pub(crate) struct Dashboard {
    /// File name under `docker/grafana/dashboards/`.
    pub(crate) file: &'static str,
    /// The dashboard JSON.
    pub(crate) json: Value,
}

/// Every dashboard.
pub(crate) fn dashboards() -> Vec<Dashboard> {
    vec![
        Dashboard {
            file: "overview.json",
            json: overview(),
        },
        Dashboard {
            file: "monitor.json",
            json: monitor(),
        },
    ]
}

/// `docker/grafana/dashboards/` in this checkout.
pub(crate) fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/grafana/dashboards")
}

/// The file content for a dashboard: pretty JSON and a final newline.
pub(crate) fn render(dashboard: &Dashboard) -> String {
    let mut text = serde_json::to_string_pretty(&dashboard.json).unwrap();
    text.push('\n');
    text
}

/// Replaces `{p50}`…`{p999}` with the merged-sketch quantile expression and `{filter}` with the
/// dashboard's variable filter.
fn sql(template: &str, filter: &str) -> String {
    let mut out = template.replace("{filter}", filter);
    for (placeholder, q) in PERCENTILES {
        out = out.replace(placeholder, &quantile_sql(q));
    }
    out
}

fn datasource() -> Value {
    json!({ "type": DATASOURCE_TYPE, "uid": DATASOURCE_UID })
}

#[derive(Clone, Copy)]
enum Format {
    TimeSeries,
    Table,
}

fn target(raw_sql: String, format: Format) -> Value {
    let (query_type, format) = match format {
        Format::TimeSeries => ("timeseries", 0),
        Format::Table => ("table", 1),
    };
    json!({
        "refId": "A",
        "datasource": datasource(),
        "editorType": "sql",
        "queryType": query_type,
        "format": format,
        "rawSql": raw_sql,
    })
}

struct Grid {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

const fn grid(x: u32, y: u32, w: u32, h: u32) -> Grid {
    Grid { x, y, w, h }
}

#[derive(Clone, Copy)]
enum Style {
    Lines,
    StackedArea,
    StackedBars,
}

fn timeseries(
    id: u32,
    title: &str,
    description: &str,
    raw_sql: String,
    unit: &str,
    style: Style,
    at: Grid,
) -> Value {
    let custom = match style {
        Style::Lines => json!({ "drawStyle": "line", "lineWidth": 1, "fillOpacity": 0,
            "spanNulls": false, "stacking": { "mode": "none", "group": "A" } }),
        Style::StackedArea => json!({ "drawStyle": "line", "lineWidth": 1, "fillOpacity": 60,
            "spanNulls": false, "stacking": { "mode": "normal", "group": "A" } }),
        Style::StackedBars => json!({ "drawStyle": "bars", "lineWidth": 1, "fillOpacity": 80,
            "spanNulls": false, "stacking": { "mode": "normal", "group": "A" } }),
    };
    json!({
        "id": id,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": datasource(),
        "gridPos": { "x": at.x, "y": at.y, "w": at.w, "h": at.h },
        "interval": "1m",
        "fieldConfig": { "defaults": { "unit": unit, "custom": custom }, "overrides": [] },
        "options": {
            "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
            "tooltip": { "mode": "multi", "sort": "desc" }
        },
        "targets": [target(raw_sql, Format::TimeSeries)],
    })
}

fn table(
    id: u32,
    title: &str,
    description: &str,
    raw_sql: String,
    overrides: Value,
    at: Grid,
) -> Value {
    json!({
        "id": id,
        "type": "table",
        "title": title,
        "description": description,
        "datasource": datasource(),
        "gridPos": { "x": at.x, "y": at.y, "w": at.w, "h": at.h },
        "fieldConfig": { "defaults": {}, "overrides": overrides },
        "options": { "showHeader": true, "cellHeight": "sm" },
        "targets": [target(raw_sql, Format::Table)],
    })
}

fn stat(id: u32, title: &str, description: &str, raw_sql: String, unit: &str, at: Grid) -> Value {
    json!({
        "id": id,
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": datasource(),
        "gridPos": { "x": at.x, "y": at.y, "w": at.w, "h": at.h },
        "fieldConfig": { "defaults": { "unit": unit, "decimals": 2 }, "overrides": [] },
        "options": {
            "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "value"
        },
        "targets": [target(raw_sql, Format::Table)],
    })
}

fn override_unit(field: &str, unit: &str) -> Value {
    json!({
        "matcher": { "id": "byName", "options": field },
        "properties": [{ "id": "unit", "value": unit }]
    })
}

// --- template variables ----------------------------------------------------------------------

fn rollup_variable() -> Value {
    json!({
        "name": "rollup",
        "label": "Resolution",
        "description": "Read one-minute windows (kept 90 days) or hourly rollups (kept two years).",
        "type": "custom",
        "query": "1 minute : windows_1m,1 hour : windows_1h",
        "current": { "selected": true, "text": "1 minute", "value": "windows_1m" },
        "options": [
            { "selected": true, "text": "1 minute", "value": "windows_1m" },
            { "selected": false, "text": "1 hour", "value": "windows_1h" }
        ],
        "multi": false,
        "includeAll": false,
        "hide": 0
    })
}

fn query_variable(name: &str, label: &str, query: &str, multi: bool, refresh: u8) -> Value {
    json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "query": query,
        "definition": query,
        "refresh": refresh,
        "multi": multi,
        "includeAll": multi,
        "current": {},
        "sort": 1,
        "hide": 0
    })
}

const TAG_QUERY: &str =
    "SELECT DISTINCT arrayJoin(tags) AS tag FROM monitors FINAL WHERE NOT deleted ORDER BY tag";

const MONITOR_QUERY: &str = "SELECT monitor_id, if(name = '', monitor_id, name) AS name
FROM monitors FINAL
WHERE NOT deleted AND $__conditionalAll(hasAny(tags, [${tag:singlequote}]), $tag)
ORDER BY monitor_id";

const REGION_QUERY: &str = "SELECT DISTINCT region
FROM $rollup
WHERE $__timeFilter(window_start)
ORDER BY region";

const MONITOR_REGION_QUERY: &str = "SELECT DISTINCT region
FROM $rollup
WHERE $__timeFilter(window_start) AND monitor_id = ${monitor:singlequote}
ORDER BY region";

/// Which alerts the overview shows: of the selected monitors (and tags), in the selected
/// regions or without a region (monitor-level quorum alerts).
const OVERVIEW_ALERT_FILTER: &str = "$__conditionalAll(monitor_id IN (${monitor:singlequote}), $monitor)
  AND $__conditionalAll(monitor_id IN (SELECT monitor_id FROM monitors FINAL WHERE hasAny(tags, [${tag:singlequote}])), $tag)
  AND (region = '' OR $__conditionalAll(region IN (${region:singlequote}), $region))";

/// Which alerts the drill-down shows: of its monitor, in the selected regions or without one.
const MONITOR_ALERT_FILTER: &str = "monitor_id = ${monitor:singlequote}
  AND (region = '' OR $__conditionalAll(region IN (${region:singlequote}), $region))";

/// Alert transitions as annotations on the time-series panels, tagged with severity, kind and
/// the state entered.
fn alert_annotation(filter: &str) -> Value {
    let raw_sql = format!(
        "SELECT
    at AS time,
    concat('[', severity, '] ', rule_id, ' on ', monitor_id, if(region = '', '', concat(' / ', region)), ': ', from_state, ' → ', to_state, if(message = '', '', concat(' — ', message))) AS text,
    concat(severity, ',', kind, ',', to_state) AS tags
FROM alerts FINAL
WHERE $__timeFilter(at)
  AND {filter}
ORDER BY time, rule_id, monitor_id, region"
    );
    json!({
        "name": "Alerts",
        "datasource": datasource(),
        "enable": true,
        "hide": false,
        "iconColor": "red",
        "target": target(raw_sql, Format::Table),
    })
}

/// The alerts pending or firing at the end of the time range (now on a live dashboard): the
/// latest transition of every rule, monitor and region up to then, when it is not `ok`.
fn active_alerts(id: u32, filter: &str, drill_down: bool, at: Grid) -> Value {
    let transitions = format!(
        "at <= $__toTime_ms\n      AND {}",
        filter.replace('\n', "\n    ")
    );
    let raw_sql = format!(
        "{}\nORDER BY since DESC, rule_id, monitor_id, region",
        active_alerts_sql(&transitions, "")
    );
    let colors = |field: &str, colors: &[(&str, &str)]| {
        let options: serde_json::Map<String, Value> = colors
            .iter()
            .enumerate()
            .map(|(i, (value, color))| ((*value).to_owned(), json!({ "color": color, "index": i })))
            .collect();
        json!({
            "matcher": { "id": "byName", "options": field },
            "properties": [
                { "id": "mappings", "value": [{ "type": "value", "options": options }] },
                { "id": "custom.cellOptions", "value": { "type": "color-text" } }
            ]
        })
    };
    let mut overrides = vec![
        colors("state", &[("firing", "red"), ("pending", "orange")]),
        colors(
            "severity",
            &[("critical", "red"), ("warning", "orange"), ("info", "blue")],
        ),
        json!({
            "matcher": { "id": "byName", "options": "transition_id" },
            "properties": [{ "id": "custom.hidden", "value": true }]
        }),
    ];
    if drill_down {
        overrides.push(json!({
            "matcher": { "id": "byName", "options": "monitor_id" },
            "properties": [{
                "id": "links",
                "value": [{
                    "title": "Drill down",
                    "url": "/d/vigil-monitor/vigil-monitor?var-monitor=${__value.raw}&${__url_time_range}"
                }]
            }]
        }));
    }
    table(
        id,
        "Active alerts",
        "Alerts pending or firing at the end of the time range (now on a live dashboard): for \
         every rule, monitor and region, its latest transition up to then when that is not to \
         ok, with the time it entered its state. The same set as GET /api/v1/alerts/active.",
        raw_sql,
        Value::Array(overrides),
        at,
    )
}

fn builtin_annotation() -> Value {
    json!({
        "builtIn": 1,
        "datasource": { "type": "grafana", "uid": "-- Grafana --" },
        "enable": true,
        "hide": true,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard"
    })
}

fn dashboard(
    uid: &str,
    title: &str,
    variables: Vec<Value>,
    annotation: Value,
    panels: Vec<Value>,
) -> Value {
    json!({
        "uid": uid,
        "title": title,
        "tags": ["vigil"],
        "timezone": "utc",
        "editable": false,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": { "from": "now-6h", "to": "now" },
        "templating": { "list": variables },
        "annotations": { "list": [builtin_annotation(), annotation] },
        "links": [{
            "title": "Vigil",
            "type": "dashboards",
            "tags": ["vigil"],
            "asDropdown": false,
            "includeVars": false,
            "keepTime": true
        }],
        "panels": panels,
    })
}

// --- shared panel SQL ------------------------------------------------------------------------

const STATUS_SQL: &str = "SELECT
    $__timeInterval(window_start) AS time,
    sum(status_1xx) AS `1xx`,
    sum(status_2xx) AS `2xx`,
    sum(status_3xx) AS `3xx`,
    sum(status_4xx) AS `4xx`,
    sum(status_5xx) AS `5xx`
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time
ORDER BY time";

const ERRORS_SQL: &str = "SELECT
    $__timeInterval(window_start) AS time,
    kind,
    sum(n) AS failures
FROM $rollup FINAL
ARRAY JOIN mapKeys(errors) AS kind, mapValues(errors) AS n
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time, kind
ORDER BY time, kind";

const PHASES_SQL: &str = "SELECT
    $__timeInterval(window_start) AS time,
    sum(dns_mean_us * dns_count) / sum(count) AS dns,
    sum(connect_mean_us * connect_count) / sum(count) AS connect,
    sum(tls_mean_us * tls_count) / sum(count) AS tls,
    sum(ttfb_mean_us * ttfb_count) / sum(count) AS ttfb
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time
ORDER BY time";

const STATUS_DESCRIPTION: &str = "Responses by status class per interval, summed over windows.";
const ERRORS_DESCRIPTION: &str = "Failed checks by outcome (timeout, connect, http_status, …).";
const PHASES_DESCRIPTION: &str = "Mean time per check spent in DNS, connect, TLS and waiting \
    for the first byte. A check without a phase (no lookup for an IP, no TLS for http://) counts \
    as zero for it, so the stack adds up to the mean time to first byte.";

// --- the overview ----------------------------------------------------------------------------

fn overview() -> Value {
    let f = OVERVIEW_FILTER;
    let panels = vec![
        timeseries(
            1,
            "Latency percentiles",
            "p50, p95 and p99 of total check time over all selected monitors and regions, from \
             the merged sketches of the windows in each interval.",
            sql(
                "SELECT
    $__timeInterval(window_start) AS time,
    {p50} AS p50,
    {p95} AS p95,
    {p99} AS p99
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time
ORDER BY time",
                f,
            ),
            "µs",
            Style::Lines,
            grid(0, 0, 12, 8),
        ),
        timeseries(
            2,
            "p95 by monitor",
            "p95 of total check time per monitor over the selected regions (merged sketches).",
            sql(
                "SELECT
    $__timeInterval(window_start) AS time,
    monitor_id,
    {p95} AS p95
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time, monitor_id
ORDER BY time, monitor_id",
                f,
            ),
            "µs",
            Style::Lines,
            grid(12, 0, 12, 8),
        ),
        timeseries(
            3,
            "Availability by monitor",
            "Share of checks with outcome ok, per monitor.",
            sql(
                "SELECT
    $__timeInterval(window_start) AS time,
    monitor_id,
    sum(ok_count) / sum(count) AS availability
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time, monitor_id
ORDER BY time, monitor_id",
                f,
            ),
            "percentunit",
            Style::Lines,
            grid(0, 8, 12, 8),
        ),
        timeseries(
            4,
            "Status classes",
            STATUS_DESCRIPTION,
            sql(STATUS_SQL, f),
            "short",
            Style::StackedBars,
            grid(12, 8, 12, 8),
        ),
        timeseries(
            5,
            "Failures by kind",
            ERRORS_DESCRIPTION,
            sql(ERRORS_SQL, f),
            "short",
            Style::StackedBars,
            grid(0, 16, 12, 8),
        ),
        timeseries(
            6,
            "Timing phases",
            PHASES_DESCRIPTION,
            sql(PHASES_SQL, f),
            "µs",
            Style::StackedArea,
            grid(12, 16, 12, 8),
        ),
        timeseries(
            7,
            "Anomaly score by monitor",
            "Highest combined anomaly score (0–1) of each monitor's windows per interval. \
             Alert transitions are shown as annotations.",
            sql(
                "SELECT
    $__timeInterval(window_start) AS time,
    monitor_id,
    max(anomaly_score) AS anomaly_score
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time, monitor_id
ORDER BY time, monitor_id",
                f,
            ),
            "none",
            Style::Lines,
            grid(0, 24, 24, 8),
        ),
        table(
            8,
            "Monitors",
            "Per monitor over the time range: p95 from the merged sketches, availability, and the \
             anomaly score of the latest window (highest over its regions). Click a monitor for its drill-down.",
            sql(
                "SELECT
    w.monitor_id AS monitor,
    m.name AS name,
    arrayStringConcat(m.tags, ', ') AS tags,
    w.p95 AS p95,
    w.availability AS availability,
    w.anomaly_score AS anomaly_score,
    w.last_window AS last_window
FROM
(
    SELECT
        monitor_id,
        {p95} AS p95,
        sum(ok_count) / sum(count) AS availability,
        argMax(anomaly_score, (window_start, anomaly_score)) AS anomaly_score,
        max(window_start) AS last_window
    FROM $rollup FINAL
    WHERE $__timeFilter(window_start)
      AND {filter}
    GROUP BY monitor_id
) AS w
LEFT JOIN
(
    SELECT monitor_id, name, tags FROM monitors FINAL WHERE NOT deleted
) AS m ON m.monitor_id = w.monitor_id
ORDER BY p95 DESC, monitor",
                f,
            ),
            json!([
                override_unit("p95", "µs"),
                override_unit("availability", "percentunit"),
                {
                    "matcher": { "id": "byName", "options": "monitor" },
                    "properties": [{
                        "id": "links",
                        "value": [{
                            "title": "Drill down",
                            "url": "/d/vigil-monitor/vigil-monitor?var-monitor=${__value.raw}&${__url_time_range}"
                        }]
                    }]
                }
            ]),
            grid(0, 32, 24, 9),
        ),
        table(
            9,
            "Certificate expiry",
            "Expiry of the TLS certificate each monitor last presented in the time range, \
             soonest first (from the raw probe results: windows do not carry certificates).",
            sql(CERT_SQL_OVERVIEW, f),
            json!([override_unit("days_left", "d")]),
            grid(0, 41, 24, 8),
        ),
        active_alerts(10, OVERVIEW_ALERT_FILTER, true, grid(0, 49, 24, 8)),
    ];
    dashboard(
        "vigil-overview",
        "Vigil — Overview",
        vec![
            rollup_variable(),
            query_variable("tag", "Tag", TAG_QUERY, true, 1),
            query_variable("monitor", "Monitor", MONITOR_QUERY, true, 1),
            query_variable("region", "Region", REGION_QUERY, true, 2),
        ],
        alert_annotation(OVERVIEW_ALERT_FILTER),
        panels,
    )
}

const CERT_SQL_OVERVIEW: &str = "SELECT
    monitor_id AS monitor,
    argMax(url, event_time) AS url,
    argMax(assumeNotNull(tls_cert_expiry), event_time) AS expires_at,
    round((toUnixTimestamp(expires_at) - toUnixTimestamp(now())) / 86400, 1) AS days_left
FROM probes
WHERE $__timeFilter(event_time)
  AND tls_cert_expiry IS NOT NULL
  AND {filter}
GROUP BY monitor_id
ORDER BY expires_at, monitor";

// --- the per-monitor drill-down --------------------------------------------------------------

fn monitor() -> Value {
    let f = MONITOR_FILTER;
    let panels = vec![
        stat(
            1,
            "p95 over the range",
            "p95 of total check time over the whole time range (merged sketches).",
            sql(
                "SELECT {p95} AS p95
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}",
                f,
            ),
            "µs",
            grid(0, 0, 6, 4),
        ),
        stat(
            2,
            "Availability over the range",
            "Share of checks with outcome ok over the whole time range.",
            sql(
                "SELECT sum(ok_count) / sum(count) AS availability
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}",
                f,
            ),
            "percentunit",
            grid(6, 0, 6, 4),
        ),
        stat(
            3,
            "Checks",
            "Number of checks in the time range.",
            sql(
                "SELECT sum(count) AS checks
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}",
                f,
            ),
            "short",
            grid(12, 0, 6, 4),
        ),
        stat(
            4,
            "Latest anomaly score",
            "Combined anomaly score of the latest window (the highest over the selected regions).",
            sql(
                "SELECT argMax(anomaly_score, (window_start, anomaly_score)) AS anomaly_score
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}",
                f,
            ),
            "none",
            grid(18, 0, 6, 4),
        ),
        timeseries(
            5,
            "Latency percentiles",
            "p50, p90, p95, p99 and p99.9 of total check time over the selected regions, from the \
             merged sketches of the windows in each interval.",
            sql(
                "SELECT
    $__timeInterval(window_start) AS time,
    {p50} AS p50,
    {p90} AS p90,
    {p95} AS p95,
    {p99} AS p99,
    {p999} AS p999
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time
ORDER BY time",
                f,
            ),
            "µs",
            Style::Lines,
            grid(0, 4, 12, 8),
        ),
        timeseries(
            6,
            "p95 by region",
            "p95 of total check time per region (merged sketches).",
            sql(
                "SELECT
    $__timeInterval(window_start) AS time,
    region,
    {p95} AS p95
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time, region
ORDER BY time, region",
                f,
            ),
            "µs",
            Style::Lines,
            grid(12, 4, 12, 8),
        ),
        timeseries(
            7,
            "Availability by region",
            "Share of checks with outcome ok, per region.",
            sql(
                "SELECT
    $__timeInterval(window_start) AS time,
    region,
    sum(ok_count) / sum(count) AS availability
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time, region
ORDER BY time, region",
                f,
            ),
            "percentunit",
            Style::Lines,
            grid(0, 12, 12, 8),
        ),
        timeseries(
            8,
            "Status classes",
            STATUS_DESCRIPTION,
            sql(STATUS_SQL, f),
            "short",
            Style::StackedBars,
            grid(12, 12, 12, 8),
        ),
        timeseries(
            9,
            "Failures by kind",
            ERRORS_DESCRIPTION,
            sql(ERRORS_SQL, f),
            "short",
            Style::StackedBars,
            grid(0, 20, 12, 8),
        ),
        timeseries(
            10,
            "Timing phases",
            PHASES_DESCRIPTION,
            sql(PHASES_SQL, f),
            "µs",
            Style::StackedArea,
            grid(12, 20, 12, 8),
        ),
        timeseries(
            11,
            "Anomaly scores",
            "Highest latency, error-rate and combined anomaly scores (0–1) per interval. Alert \
             transitions are shown as annotations.",
            sql(
                "SELECT
    $__timeInterval(window_start) AS time,
    max(anomaly_latency) AS latency,
    max(anomaly_errors) AS errors,
    max(anomaly_score) AS combined
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
GROUP BY time
ORDER BY time",
                f,
            ),
            "none",
            Style::Lines,
            grid(0, 28, 24, 8),
        ),
        table(
            12,
            "Anomalous windows",
            "The windows with the highest combined anomaly score, with the detector's reason.",
            sql(
                "SELECT
    window_start AS time,
    region,
    anomaly_score,
    anomaly_reason AS reason
FROM $rollup FINAL
WHERE $__timeFilter(window_start)
  AND {filter}
  AND anomaly_reason != ''
ORDER BY anomaly_score DESC, time DESC, region
LIMIT 50",
                f,
            ),
            json!([]),
            grid(0, 36, 16, 8),
        ),
        table(
            13,
            "Certificate expiry",
            "Expiry of the TLS certificate the monitor last presented in each region \
             (from the raw probe results: windows do not carry certificates).",
            sql(
                "SELECT
    region,
    argMax(url, event_time) AS url,
    argMax(assumeNotNull(tls_cert_expiry), event_time) AS expires_at,
    round((toUnixTimestamp(expires_at) - toUnixTimestamp(now())) / 86400, 1) AS days_left
FROM probes
WHERE $__timeFilter(event_time)
  AND tls_cert_expiry IS NOT NULL
  AND {filter}
GROUP BY region
ORDER BY expires_at, region",
                f,
            ),
            json!([override_unit("days_left", "d")]),
            grid(16, 36, 8, 8),
        ),
        active_alerts(14, MONITOR_ALERT_FILTER, false, grid(0, 44, 24, 8)),
    ];
    dashboard(
        "vigil-monitor",
        "Vigil — Monitor",
        vec![
            rollup_variable(),
            query_variable("tag", "Tag", TAG_QUERY, true, 1),
            query_variable("monitor", "Monitor", MONITOR_QUERY, false, 1),
            query_variable("region", "Region", MONITOR_REGION_QUERY, true, 2),
        ],
        alert_annotation(MONITOR_ALERT_FILTER),
        panels,
    )
}

// --- tests -----------------------------------------------------------------------------------

/// All query SQL of a dashboard: `(title, sql)` of panels, variables and annotations.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["rawSql"].as_str().unwrap().to_owned(),
            ));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            out.push((
                format!("variable {}", variable["name"].as_str().unwrap()),
                variable["query"].as_str().unwrap().to_owned(),
            ));
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        if let Some(sql) = annotation["target"]["rawSql"].as_str() {
            out.push((
                format!("annotation {}", annotation["name"].as_str().unwrap()),
                sql.to_owned(),
            ));
        }
    }
    out
}

/// Names of the variables a query uses: `$name` and `${name…}`, not macros (`$__…`).
fn variables_used(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let braced = bytes.get(i + 1) == Some(&b'{');
            let start = if braced { i + 2 } else { i + 1 };
            let end = start
                + sql[start..]
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
            let name = &sql[start..end];
            if !name.is_empty() && !name.starts_with("__") {
                out.push(name.to_owned());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn committed_dashboards_are_the_generated_ones() {
    let bless = std::env::var_os("VIGIL_BLESS").is_some();
    for dashboard in dashboards() {
        let path = dashboards_dir().join(dashboard.file);
        let generated = render(&dashboard);
        if bless {
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is not what tests/deploy/dashboards.rs generates; \
             run `VIGIL_BLESS=1 cargo test --test deploy` and commit the result",
            path.display()
        );
    }
    let mut files: Vec<String> = std::fs::read_dir(dashboards_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["monitor.json", "overview.json"],
        "stray dashboard files"
    );
}

#[test]
fn percentile_panels_merge_sketches_with_the_schema_expression() {
    let mut percentile_queries = 0;
    for dashboard in dashboards() {
        for (title, sql) in queries(&dashboard.json) {
            // Stored per-window percentiles must never be aggregated across windows.
            for column in ["p50_us", "p75_us", "p90_us", "p95_us", "p99_us", "p999_us"] {
                assert!(!sql.contains(column), "{title}: reads {column}");
            }
            if sql.contains("sumMap(sketch_keys") {
                percentile_queries += 1;
                let used: Vec<f64> = PERCENTILES
                    .iter()
                    .map(|&(_, q)| q)
                    .filter(|&q| sql.contains(&quantile_sql(q)))
                    .collect();
                assert!(!used.is_empty(), "{title}: sketch SQL is not quantile_sql");
                // Every occurrence of the sketch merge belongs to a quantile_sql expression.
                let expected: usize = used
                    .iter()
                    .map(|&q| {
                        sql.matches(&quantile_sql(q)).count()
                            * quantile_sql(q).matches("sumMap(").count()
                    })
                    .sum();
                assert_eq!(sql.matches("sumMap(").count(), expected, "{title}");
            }
            for placeholder in ["{p50}", "{p90}", "{p95}", "{p99}", "{p999}", "{filter}"] {
                assert!(!sql.contains(placeholder), "{title}: {placeholder} left");
            }
        }
    }
    // Overview: percentiles, p95 by monitor, monitors table. Drill-down: stat, percentiles, by region.
    assert_eq!(percentile_queries, 6);
}

#[test]
fn panels_read_windows_and_only_the_allowed_tables() {
    for dashboard in dashboards() {
        for (title, sql) in queries(&dashboard.json) {
            let tables: Vec<&str> = [
                "FROM $rollup",
                "FROM monitors",
                "FROM alerts",
                "FROM probes",
            ]
            .into_iter()
            .filter(|from| sql.contains(from))
            .collect();
            assert!(!tables.is_empty(), "{title}: reads none of Vigil's tables");
            assert!(
                !sql.contains("FROM windows_1m") && !sql.contains("FROM windows_1h"),
                "{title}: names a window table instead of $rollup"
            );
            if sql.contains("FROM probes") {
                assert!(title.contains("Certificate"), "{title}: reads raw probes");
            }
            if sql.contains("FROM $rollup") && !title.starts_with("variable") {
                assert!(
                    sql.contains("FROM $rollup FINAL"),
                    "{title}: windows without FINAL"
                );
            }
            if title == "Active alerts" {
                // The state at the end of the range: every transition up to it counts.
                assert!(
                    sql.contains("at <= $__toTime_ms") && !sql.contains("$__timeFilter("),
                    "{title}: not the state at the end of the time range"
                );
            } else if !title.starts_with("variable tag") && !title.starts_with("variable monitor") {
                assert!(
                    sql.contains("$__timeFilter("),
                    "{title}: not limited to the dashboard's time range"
                );
            }
        }
    }
}

#[test]
fn every_variable_a_query_uses_is_defined() {
    for dashboard in dashboards() {
        let defined: Vec<String> = dashboard.json["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(defined, ["rollup", "tag", "monitor", "region"]);
        for (title, sql) in queries(&dashboard.json) {
            for name in variables_used(&sql) {
                assert!(
                    defined.contains(&name),
                    "{title}: undefined variable ${name}"
                );
            }
        }
    }
}

#[test]
fn every_query_uses_the_provisioned_datasource() {
    let provisioning = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docker/grafana/provisioning/datasources/clickhouse.yaml"),
    )
    .unwrap();
    let provisioning: serde_norway::Value = serde_norway::from_str(&provisioning).unwrap();
    let source = &provisioning["datasources"][0];
    assert_eq!(source["uid"].as_str(), Some(DATASOURCE_UID));
    assert_eq!(source["type"].as_str(), Some(DATASOURCE_TYPE));
    for dashboard in dashboards() {
        let text = render(&dashboard);
        let value: Value = serde_json::from_str(&text).unwrap();
        let mut sources = Vec::new();
        collect_datasources(&value, &mut sources);
        assert!(!sources.is_empty());
        for source in sources {
            assert!(
                source == datasource() || source["uid"] == "-- Grafana --",
                "{}: unexpected datasource {source}",
                dashboard.file
            );
        }
    }
}

fn collect_datasources(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "datasource" {
                    out.push(child.clone());
                } else {
                    collect_datasources(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_datasources(item, out)),
        _ => {}
    }
}

#[test]
fn active_alerts_are_the_apis_active_set_and_annotations_carry_severity() {
    for dashboard in dashboards() {
        let all = queries(&dashboard.json);
        let active: Vec<&String> = all
            .iter()
            .filter(|(title, _)| title == "Active alerts")
            .map(|(_, sql)| sql)
            .collect();
        assert_eq!(
            active.len(),
            1,
            "{}: one active alerts table",
            dashboard.file
        );
        // The API's statement, with the dashboard's filter on the transitions considered.
        let sql = active[0];
        let (head, tail) = sql.split_once("WHERE at <= $__toTime_ms").unwrap();
        let (_, tail) = tail.split_once("\n    GROUP BY").unwrap();
        assert_eq!(
            format!("{head}WHERE 1\n    GROUP BY{tail}"),
            format!(
                "{}\nORDER BY since DESC, rule_id, monitor_id, region",
                active_alerts_sql("1", "")
            ),
            "{}",
            dashboard.file
        );
        let (_, annotation) = all
            .iter()
            .find(|(title, _)| title == "annotation Alerts")
            .unwrap();
        assert!(annotation.contains("concat(severity, ',', kind, ',', to_state) AS tags"));
    }
}

#[test]
fn variable_scanner_finds_names_and_skips_macros() {
    assert_eq!(
        variables_used(
            "x IN (${monitor:singlequote}) AND $__timeFilter(t) AND $region FROM $rollup"
        ),
        ["monitor", "region", "rollup"]
    );
}
