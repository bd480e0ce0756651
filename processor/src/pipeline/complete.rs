//! Completing a partial window: one created after its window had closed and left memory
//! ([`crate::Config::evicts_closed`]) holds only the events read since. Its complete row is
//! recomputed from every stored raw probe of the window, so writing it is idempotent: a
//! correction applied twice (after a crash before the commit), or a duplicate event, yields
//! the same row as one applied once.

use vigil_schema::{AnomalyScores, ProbeResult};

use super::EmittedWindow;
use crate::window::WindowAgg;

impl EmittedWindow {
    /// The window recomputed from `probes` (every stored raw probe of its monitor, region and
    /// window, in any order, duplicates allowed), keeping `stored`, the scores of the row
    /// already written for it, if there is one (corrections keep the scores a window was
    /// first given). Fails if the probes hold fewer events than this partial window: the
    /// probes written with it are not visible yet, and the write must be retried.
    pub fn completed<'a>(
        &self,
        probes: impl IntoIterator<Item = &'a ProbeResult>,
        stored: Option<AnomalyScores>,
    ) -> Result<EmittedWindow, String> {
        let s = &self.summary;
        let (start, end) = (s.window_start.as_millis(), s.window_end.as_millis());
        let mut window = WindowAgg::new(start, end, 0, s.sketch.alpha);
        for probe in probes {
            window.add(probe);
        }
        if window.count() < s.count {
            return Err(format!(
                "the stored probes of {}/{} at {} hold {} events, fewer than the {} of its \
                 correction",
                s.monitor_id,
                s.region,
                s.window_start,
                window.count(),
                s.count
            ));
        }
        let correction = self.correction || stored.is_some();
        window.anomaly = stored.or_else(|| s.anomaly.clone());
        Ok(EmittedWindow {
            summary: window.summary(&s.monitor_id, &s.region),
            phase_counts: window.phase_counts(),
            ttfb_sketch: window.ttfb_sketch().to_data(),
            correction,
            partial: false,
        })
    }
}
