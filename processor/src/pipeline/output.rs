//! What the pipeline hands its caller to write: window rows, raw probes, dead letters, alert
//! transitions and the alert evaluator's changelog records.

use bytes::Bytes;
use vigil_schema::{AlertTransition, ProbeResult, SketchData, WindowSummary};

/// A window row ready to be written, with the columns beyond [`WindowSummary`] that let
/// ClickHouse merge rows exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct EmittedWindow {
    /// The summary (published on `vigil.windows`).
    pub summary: WindowSummary,
    /// Observations behind the dns, connect, tls and ttfb means.
    pub phase_counts: [u64; 4],
    /// Time-to-first-byte sketch.
    pub ttfb_sketch: SketchData,
    /// Whether this re-emits a window already written (a late event arrived).
    pub correction: bool,
    /// Whether it holds only the events read since the window was evicted (see
    /// [`crate::Config::evicts_closed`]): the writer completes it from the stored raw probes
    /// before writing or publishing it.
    pub partial: bool,
}

/// A record that could not be windowed, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Record key, as read.
    pub key: Option<Vec<u8>>,
    /// Record value, as read.
    pub payload: Vec<u8>,
    /// Why (`undecodable: …`, `invalid: …`, `late: …`).
    pub reason: String,
}

/// What the pipeline produced since the last
/// [`Pipeline::take_output`](super::Pipeline::take_output).
#[derive(Debug, Default)]
pub struct Output {
    /// Window rows (first emissions and corrections).
    pub windows: Vec<EmittedWindow>,
    /// Raw probe results accepted (when storing probes is on).
    pub probes: Vec<ProbeResult>,
    /// Records for the dead-letter topic.
    pub dead_letters: Vec<DeadLetter>,
    /// Alert transitions, in evaluation order.
    pub transitions: Vec<AlertTransition>,
    /// Alert evaluator state changed by this output: (probes partition, key, value or `None`
    /// for deleted), for the changelog topic.
    pub alert_state: Vec<StateRecord>,
}

/// One record of the alert evaluator's changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    /// The probes partition the state belongs to.
    pub partition: i32,
    /// The state key.
    pub key: String,
    /// The serialized state; `None` when it was dropped.
    pub value: Option<Bytes>,
}

impl StateRecord {
    /// The record's key on the changelog topic: `{partition}/{key}`.
    pub fn changelog_key(&self) -> String {
        format!("{}/{}", self.partition, self.key)
    }

    /// Splits a changelog key into the probes partition and the state key.
    pub fn parse_changelog_key(key: &str) -> Option<(i32, &str)> {
        let (p, key) = key.split_once('/')?;
        Some((p.parse().ok()?, key))
    }
}

impl Output {
    /// Number of pending items.
    pub fn len(&self) -> usize {
        self.windows.len()
            + self.probes.len()
            + self.dead_letters.len()
            + self.transitions.len()
            + self.alert_state.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
