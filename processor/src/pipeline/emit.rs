//! Emitting a closed or corrected window: its anomaly scores, the alert rules evaluated on its
//! first emission, and the rows and records written for it.

use super::{DetectorSet, EmittedWindow, Output, PartitionState, WindowRef};
use crate::alert::{ClosedWindow, Sample, Stage};
use crate::window::WindowAgg;

impl PartitionState {
    /// Emits the windows `refs` name, in that order (with `changed_only`, each only if it
    /// changed since its last emission, as a correction when it had one), keeping the
    /// accounted heap in step (a first emission frees the window's checks).
    pub(super) fn emit_windows(
        &mut self,
        refs: &[WindowRef],
        changed_only: bool,
        (detectors, alerts, out, partition): Emitting<'_>,
    ) {
        for window_ref in refs {
            let emitting = (&mut *detectors, &mut *alerts, &mut *out, partition);
            self.emit_window(window_ref, changed_only, emitting);
        }
    }

    /// Emits one window (see [`PartitionState::emit_windows`]).
    fn emit_window(
        &mut self,
        window_ref: &WindowRef,
        changed_only: bool,
        (detectors, alerts, out, partition): Emitting<'_>,
    ) {
        let Some(window) = self.window_mut(window_ref) else {
            return;
        };
        if changed_only && window.version() <= window.emitted_version {
            return;
        }
        let correction = changed_only && window.emitted_version > 0;
        let before = window.heap_bytes();
        emit(
            detectors, alerts, out, partition, window_ref, window, correction,
        );
        let after = window.heap_bytes();
        self.heap = (self.heap + after).saturating_sub(before);
    }
}

/// What emitting a window writes to: the detectors, the alert evaluator, the output, and the
/// partition it belongs to.
type Emitting<'a> = (
    &'a mut DetectorSet,
    &'a mut Option<Stage>,
    &'a mut Output,
    i32,
);

/// Emits the current version of a window (scoring it and evaluating alert rules on its first
/// emission).
fn emit(
    detectors: &mut DetectorSet,
    alerts: &mut Option<Stage>,
    out: &mut Output,
    partition: i32,
    (monitor, region, _): &WindowRef,
    window: &mut WindowAgg,
    correction: bool,
) {
    let first = window.emitted_version == 0;
    if window.anomaly.is_none() {
        let (start, p95, errors) = (window.start, window.p95_us(), 1.0 - window.availability());
        let scores = detectors.with(monitor, region, |d| d.score(start, p95, errors));
        window.anomaly = Some(scores);
    }
    if first {
        let checks = window.take_checks();
        if let Some(alerts) = alerts {
            let mut samples = std::mem::take(&mut alerts.samples);
            samples.clear();
            samples.extend(checks.iter().map(|c| Sample {
                t_ms: c.t_ms,
                ok: c.ok,
                cert_expiry_ms: c.cert_expiry_ms,
            }));
            let closed = ClosedWindow {
                partition,
                monitor_id: monitor,
                region,
                start_ms: window.start,
                end_ms: window.end,
                count: window.count(),
                ok_count: window.ok_count(),
                status: window.status_counts(),
                sketch: window.sketch(),
                anomaly: window.anomaly.as_ref().map(|a| a.combined),
                samples: &samples,
            };
            window.alert_seq = alerts.on_window(&closed);
            alerts.samples = samples;
        }
    }
    window.emitted_version = window.version();
    out.windows.push(EmittedWindow {
        summary: window.summary(monitor, region),
        phase_counts: window.phase_counts(),
        ttfb_sketch: window.ttfb_sketch().to_data(),
        correction,
        partial: window.partial,
    });
}
