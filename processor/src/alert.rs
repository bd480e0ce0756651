//! Alert-rule evaluation: the pure core that turns closed windows and watermarks into
//! [`AlertTransition`](vigil_schema::AlertTransition)s, in event time. No I/O and no clock:
//! the consumer feeds it and writes what it returns.
//!
//! # Layout
//! - [`Evaluator`] (`eval.rs`): every rule on every series (monitor, region) of the assigned
//!   partitions, the timer queue, quorum alerts and the state changelog.
//! - [`RuleSet`] (`rules.rs`): rules validated
//!   ([`RuleSpec::validate`](vigil_schema::RuleSpec::validate)), compiled and selected per
//!   series, and the default rule.
//! - `check.rs`: one rule on one series, and how each kind evaluates a window.
//! - `state.rs`: the ok → pending → firing → ok machine (`for`, `keep_firing_for`,
//!   hysteresis).
//! - `series.rs`: the ring of recent windows merged over a rule's span.
//! - `burn.rs`: bounded good/bad buckets and burn rates.
//! - `tracked.rs`: what is kept per series and per monitor.
//! - `changelog.rs`: snapshots and deltas, and replaying the deltas on restore.
//! - `id.rs`: deterministic transition ids, changelog keys and values.
//! - `stage.rs`: the evaluator on a thread of its own, fed by the pipeline in order.
//! - `summary.rs`: summaries from the rule's template (the schema's grammar,
//!   [`validate_template`]) or a default per kind in human units, and the transitions.
//!
//! # Use
//! ```text
//! let mut ev = Evaluator::new(window_ms);
//! ev.set_rules(RuleSet::new(rules, monitor_tags, true));       // again whenever they change
//! on assignment of p: ev.drop_partition(p); for (key, value) in changelog(p) { ev.restore(p, &key, &value)?; }
//!                     ev.finish_restore(p, &mut transitions);
//! on revocation of p: ev.drop_partition(p);
//! loop {
//!     for window in first_emissions { ev.on_window(&ClosedWindow { .. }, &mut transitions); }
//!     ev.on_watermark(partition, watermark_ms, &mut transitions);
//!     produce(transitions); produce(ev.take_changes()); commit offsets;
//! }
//! ```
//! Contract: windows of a series arrive in start order, each once with its checks sorted by
//! (event time, event id) (corrections are not re-evaluated); `on_watermark(p, w)` comes after
//! every window of partition `p` ending at or before `w`. Probes are keyed by monitor, so all
//! regions of a monitor share a partition, which quorum alerts rely on.
//!
//! # Semantics
//! - **Selection.** An enabled, valid rule applies to a series when its `monitors` hold the
//!   monitor or its `tags` meet the monitor's tags (both empty: every monitor) and its
//!   `regions` are empty or hold the region; invalid rules are left out and listed by
//!   [`RuleSet::rejected`]. The default rule [`DEFAULT_RULE_ID`] applies to every series that
//!   no user rule of kind `consecutive_failures` selects. Rules are evaluated in id order.
//! - **Time.** Event time only. A transition's `at` is the window end for window kinds, the
//!   check's time for per-check kinds (consecutive failures, certificate), the deadline for no
//!   data and for timers (`pending_since + for`, the start of `keep_firing_for` plus its
//!   length). Timers due at or before an evaluation run before it, and the watermark runs a
//!   timer once every check before it is known (its window has closed), so the transitions do
//!   not depend on how calls interleave.
//! - **States.** `for = 0` goes ok → firing; otherwise ok → pending, then pending → firing once
//!   the condition held until `pending_since + for`, or pending → ok. A firing alert whose
//!   condition stops holding resolves after `keep_firing_for` unless it holds again first.
//!   Hysteresis: an alert goes active past the firing threshold and stays active until the
//!   value crosses the recovery threshold (default: the firing one). A transition reports the
//!   firing threshold, or the recovery threshold when it goes to ok.
//! - **Kinds** (value; threshold): consecutive failures (the streak; `failures`, or
//!   `successes` on resolve), latency percentile of the merged sketches of the span (µs, within
//!   the sketch's relative accuracy), availability over the span (ratio; no checks: not
//!   evaluated), status pattern (share of the class among checks with a status; `error` is
//!   4xx + 5xx), anomaly (the window's combined score; none: not evaluated), certificate expiry
//!   (seconds left at the latest check with a certificate; `within` in seconds, fires when
//!   fewer are left), burn rate (the long-window rate of the most severe pair whose long and
//!   short windows both exceed its rate; that pair's rate and severity, kept until the alert
//!   resolves; see `burn.rs`), no data (seconds without results; `intervals × interval`, the
//!   interval being the gap between the last two checks, at least 1 s, or the window length
//!   before two; any later check resolves it). A latency SLO counts
//!   a check good when its total time is at most the threshold, read from the window sketch:
//!   checks up to a factor `(1 + α)/(1 − α)` above it may count as good (see
//!   [`Sketch::count_at_most`](vigil_schema::sketch::Sketch::count_at_most)).
//! - **Spans** cover the windows starting in `[end − span, end)`, at most one hour.
//! - **Quorum** `k`: regions are evaluated as usual but emit nothing; the monitor-level alert
//!   (region `None`, value = regions firing, threshold = `k`) fires when a regional change
//!   brings `k` regions to firing and resolves when one leaves fewer, at that change's time.
//! - **Rule changes** apply from the next window: the alerts of a rule that is removed,
//!   disabled, changes kind or no longer selects a series go to ok at the series' next window
//!   end (a rule unknown after a restart is dropped silently). Burn counts are kept across
//!   edits unless the good-check definition changes.
//! - **Ids** are UUIDv5 of (rule, monitor, region, from, to, at): identical on every run.
//!
//! # State
//! Bounded per series: at most an hour of windows (sketches only while a latency rule
//! applies), the last check's time, and per rule a small state plus, for burn rates, at most about
//! 3.5 KiB of buckets. [`Evaluator::take_changes`] returns the changed records: snapshots
//! `s␟monitor␟region` (a series and every rule state on it), deltas `d␟monitor␟region␟i` (a
//! window evaluated since the snapshot, far smaller than the state it changes) and
//! `q␟monitor` (quorum alerts firing), valued as a format byte then postcard;
//! [`Evaluator::restore`] reads them back and [`Evaluator::finish_restore`] evaluates the
//! deltas again (see `changelog.rs`). They hold every timer as an absolute event time and the
//! last evaluated window start, so a restored evaluator continues exactly where the saved one
//! stopped, and windows re-emitted after a restart are ignored.

mod burn;
mod changelog;
mod check;
mod eval;
mod id;
mod rules;
mod series;
mod stage;
mod state;
mod summary;
#[cfg(test)]
mod tests;
mod tracked;

use vigil_schema::sketch::Sketch;

pub use eval::Evaluator;
pub use rules::{DEFAULT_RULE_ID, RuleSet, default_rule};
pub(crate) use stage::Stage;
pub use summary::validate_template;

/// One check as alerting sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Event time, unix ms.
    pub t_ms: i64,
    /// Whether the check passed.
    pub ok: bool,
    /// When the peer certificate expires, unix ms, if the check saw one.
    pub cert_expiry_ms: Option<i64>,
}

/// A window that just closed (its first emission), with its checks.
#[derive(Debug, Clone, Copy)]
pub struct ClosedWindow<'a> {
    /// The input partition it was read from.
    pub partition: i32,
    /// The monitor.
    pub monitor_id: &'a str,
    /// The region.
    pub region: &'a str,
    /// Inclusive start, unix ms.
    pub start_ms: i64,
    /// Exclusive end, unix ms.
    pub end_ms: i64,
    /// Checks.
    pub count: u64,
    /// Checks that passed.
    pub ok_count: u64,
    /// Responses by status class, 1xx to 5xx.
    pub status: [u64; 5],
    /// Total-time sketch (µs).
    pub sketch: &'a Sketch,
    /// Combined anomaly score, when scored.
    pub anomaly: Option<f64>,
    /// The checks, sorted by (event time, event id).
    pub samples: &'a [Sample],
}
