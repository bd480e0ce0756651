//! `vigil anomaly score`: runs the processor's anomaly detector over a CSV series.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::Context;
use vigil_processor::anomaly::{Config, Detector, series};

/// Scores `input` (`-` for stdin) and writes `timestamp,value,anomaly_score[,reason]` to stdout.
pub(crate) fn score(input: &Path, reasons: bool) -> anyhow::Result<()> {
    let mut text = String::new();
    if input == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("failed to read stdin")?;
    } else {
        text = std::fs::read_to_string(input)
            .with_context(|| format!("failed to read {}", input.display()))?;
    }
    let points =
        series::parse_csv(&text).with_context(|| format!("invalid series {}", input.display()))?;

    let mut detector = Detector::new(Config::default());
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(
        out,
        "timestamp,value,anomaly_score{}",
        if reasons { ",reason" } else { "" }
    )?;
    for point in points {
        let score = detector.update(point.timestamp, point.value);
        write!(
            out,
            "{},{},{:.6}",
            point.raw_timestamp, point.value, score.score
        )?;
        if reasons {
            write!(out, ",\"{}\"", score.reason.replace('"', "\"\""))?;
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}
