//! A status page as HTML: semantic sections, text for every state (colour is never the only
//! sign), uptime bars and a response-time line as inline SVG with text alternatives, and no
//! script. Everything from a spec is escaped by `maud`.

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::data::{Component, DAYS, Incident, Maintenance, PageData, State};

const DAY_MS: i64 = 86_400_000;

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) }
        link rel="stylesheet" href="/ui/assets/status.css";
        link rel="icon" href="/ui/assets/favicon.svg" type="image/svg+xml";
    }
}

const fn label(state: State) -> (&'static str, &'static str) {
    match state {
        State::NoData => ("nodata", "No data"),
        State::Operational => ("up", "Operational"),
        State::Maintenance => ("maintenance", "Under maintenance"),
        State::Degraded => ("degraded", "Degraded performance"),
        State::Outage => ("down", "Major outage"),
    }
}

const fn headline(state: State) -> &'static str {
    match state {
        State::NoData => "No recent data",
        State::Operational => "All systems operational",
        State::Maintenance => "Maintenance in progress",
        State::Degraded => "Some systems are degraded",
        State::Outage => "Major outage",
    }
}

fn iso(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `2026-12-03 14:05 UTC`.
fn shown(ms: i64) -> String {
    let iso = iso(ms);
    match (iso.get(..10), iso.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => iso,
    }
}

fn day(ms: i64) -> String {
    iso(ms).get(..10).unwrap_or_default().to_owned()
}

fn duration(ms: i64) -> String {
    let minutes = ms / 60_000;
    match minutes {
        m if m < 1 => "under a minute".to_owned(),
        m if m < 60 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} days", m / (24 * 60)),
    }
}

fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p >= 100.0 {
        "100%".to_owned()
    } else if p >= 99.0 {
        format!("{:.2}%", (p * 100.0).floor() / 100.0)
    } else {
        format!("{p:.1}%")
    }
}

fn bar_class(ratio: Option<f64>) -> &'static str {
    match ratio {
        None => "nodata",
        Some(r) if r >= 0.999 => "up",
        Some(r) if r >= 0.95 => "degraded",
        Some(_) => "down",
    }
}

fn uptime_bars(c: &Component, first_day: i64) -> Markup {
    let summary = c.uptime.map_or_else(
        || "no checks in 90 days".to_owned(),
        |u| format!("{} uptime over 90 days", percent(u)),
    );
    html! {
        svg class="bars" viewBox=(format!("0 0 {} 34", DAYS * 6)) preserveAspectRatio="none"
            role="img" aria-label=(format!("{}: {summary}", c.name)) {
            @for (i, ratio) in c.days.iter().enumerate() {
                @let at = first_day + i64::try_from(i).unwrap_or(0) * DAY_MS;
                rect class=(bar_class(*ratio)) x=(i * 6) y="0" width="4" height="34" {
                    title {
                        (day(at)) ": "
                        (ratio.map_or_else(|| "no data".to_owned(), percent))
                    }
                }
            }
        }
        p class="bar-legend" {
            span { "90 days ago" }
            span class="uptime" { (summary) }
            span { "Today" }
        }
    }
}

fn response_chart(c: &Component) -> Markup {
    const W: f64 = 540.0;
    const H: f64 = 60.0;
    if c.response.is_empty() {
        return html! { p class="rt-empty" { "No response times in the last 24 hours." } };
    }
    let max = c
        .response
        .iter()
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let (t0, t1) = (c.response[0].0, c.response[c.response.len() - 1].0);
    let span = (t1 - t0).max(1) as f64;
    let y = |v: f64| H - v / max * (H - 4.0);
    let points: Vec<String> = if c.response.len() == 1 {
        // One hour so far: a level line at its value.
        let v = y(c.response[0].1);
        vec![format!("0,{v:.1}"), format!("{W},{v:.1}")]
    } else {
        c.response
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", (t - t0) as f64 / span * W, y(*v)))
            .collect()
    };
    let last = c.response[c.response.len() - 1].1;
    let text = format!(
        "{}: p95 response time over the last 24 hours, latest {:.0} ms, highest {:.0} ms",
        c.name,
        last / 1000.0,
        max / 1000.0
    );
    html! {
        figure class="rt" {
            svg viewBox=(format!("0 0 {W} {H}")) preserveAspectRatio="none" role="img"
                aria-label=(text) data-points=(c.response.len()) {
                polyline points=(points.join(" ")) {}
            }
            figcaption { "Response time (p95, 24 h): latest " (format!("{:.0}", last / 1000.0)) " ms" }
        }
    }
}

fn component(c: &Component, first_day: i64) -> Markup {
    let (class, text) = label(c.state);
    html! {
        li class="component" {
            div class="row" {
                h4 { (c.name) }
                span class=(format!("state {class}")) { (text) }
            }
            (uptime_bars(c, first_day))
            (response_chart(c))
        }
    }
}

fn incident(i: &Incident, now_ms: i64) -> Markup {
    let what = match i.severity.as_str() {
        "critical" => "Outage",
        "warning" => "Degraded performance",
        _ => "Incident",
    };
    html! {
        li {
            h3 { (i.component) ": " (what) }
            p {
                "Started " time datetime=(iso(i.started_ms)) { (shown(i.started_ms)) }
                @match i.resolved_ms {
                    Some(end) => {
                        ", resolved " time datetime=(iso(end)) { (shown(end)) }
                        " (" (duration(end - i.started_ms)) ")."
                    }
                    None => { ", ongoing for " (duration(now_ms - i.started_ms)) "." }
                }
            }
        }
    }
}

fn maintenance(m: &Maintenance, now_ms: i64) -> Markup {
    html! {
        li {
            h3 { "Scheduled maintenance" }
            p {
                @if m.starts_ms <= now_ms { "In progress, until " } @else { "Scheduled from " time datetime=(iso(m.starts_ms)) { (shown(m.starts_ms)) } " to " }
                time datetime=(iso(m.ends_ms)) { (shown(m.ends_ms)) } "."
            }
            p class="affects" { "Affects: " (m.components.join(", ")) }
        }
    }
}

/// The page.
pub(crate) fn page(data: &PageData) -> String {
    let overall = data.overall();
    let (class, _) = label(overall);
    let today = data.now_ms.div_euclid(DAY_MS) * DAY_MS;
    let first_day = today - (DAYS - 1) * DAY_MS;
    let spec = &data.spec;
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(&format!("{} status", spec.title))) }
            body {
                header {
                    h1 { (spec.title) }
                    @if !spec.description.is_empty() { p class="description" { (spec.description) } }
                }
                main {
                    section class=(format!("overall {class}")) aria-labelledby="overall" {
                        h2 id="overall" { (headline(overall)) }
                        p { "Updated " time datetime=(iso(data.now_ms)) { (shown(data.now_ms)) } }
                    }
                    @if !data.maintenance.is_empty() {
                        section aria-labelledby="maintenance" {
                            h2 id="maintenance" { "Maintenance" }
                            ul class="maintenance" {
                                @for m in &data.maintenance { (maintenance(m, data.now_ms)) }
                            }
                        }
                    }
                    section aria-labelledby="components" {
                        h2 id="components" { "Components" }
                        @for g in &data.groups {
                            section class="group" aria-label=(g.name) {
                                h3 { (g.name) }
                                ul class="components" {
                                    @for c in &g.components { (component(c, first_day)) }
                                }
                            }
                        }
                    }
                    section aria-labelledby="incidents" {
                        h2 id="incidents" { "Incidents" }
                        @if data.incidents.is_empty() {
                            p { "No incidents in the last 90 days." }
                        } @else {
                            ol class="incidents" {
                                @for i in &data.incidents { (incident(i, data.now_ms)) }
                            }
                        }
                    }
                }
                footer { p { "Powered by Vigil" } }
            }
        }
    }
    .into_string()
}

/// The answer for an unknown page.
pub(crate) fn not_found() -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Status page not found")) }
            body { main { h1 { "Status page not found" } p { "There is no status page at this address." } } }
        }
    }
    .into_string()
}

/// The answer while the data cannot be read.
pub(crate) fn unavailable(title: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(&format!("{title} status"))) }
            body { main {
                h1 { (title) }
                p { "The status cannot be shown right now. Please try again in a moment." }
            } }
        }
    }
    .into_string()
}
