//! `vigil anomaly score`: runs the processor's anomaly detector over a CSV series.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::Context;
use vigil_processor::anomaly::{Config, Detector, series};

/// Scores `input` (`-` for stdin) and writes
/// `timestamp,value,anomaly_score[,reason][,feature,expected,error,probability]` to stdout.
pub(crate) fn score(input: &Path, reasons: bool, explain: bool) -> anyhow::Result<()> {
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
    let mut out = BufWriter::new(std::io::stdout().lock());
    write_scores(&points, reasons, explain, &mut out)?;
    out.flush()?;
    Ok(())
}

/// The scored series as CSV.
fn write_scores(
    points: &[series::Point],
    reasons: bool,
    explain: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut detector = Detector::new(Config::default());
    writeln!(
        out,
        "timestamp,value,anomaly_score{}{}",
        if reasons { ",reason" } else { "" },
        if explain {
            ",feature,expected,error,probability"
        } else {
            ""
        }
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
        if explain {
            match score.explanation {
                Some(e) => write!(
                    out,
                    ",{},{},{},{:.6e}",
                    e.feature, e.expected, e.error, e.probability
                )?,
                None => write!(out, ",,,,")?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_adds_what_was_expected_and_how_unlikely() {
        let mut csv = String::from("timestamp,value\n");
        for i in 0..400 {
            let v = if i == 399 {
                500.0
            } else {
                100.0 + (i % 7) as f64
            };
            csv.push_str(&format!("{},{v}\n", 1_600_000_000 + i * 60));
        }
        let points = series::parse_csv(&csv).unwrap();
        let mut out = Vec::new();
        write_scores(&points, false, true, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "timestamp,value,anomaly_score,feature,expected,error,probability"
        );
        // Warm-up: no explanation yet.
        assert_eq!(lines[1], "1600000000,100,0.000000,,,,");
        let last: Vec<&str> = lines[400].split(',').collect();
        assert_eq!(last[..3], ["1600023940", "500", "1.000000"]);
        // A jump this far stands out in more than one view; whichever it names, what it
        // expected is near the usual 100–106 and the error is the rest.
        assert!(
            ["spike", "shift", "range"].contains(&last[3]),
            "{}",
            lines[400]
        );
        let expected: f64 = last[4].parse().unwrap();
        let error: f64 = last[5].parse().unwrap();
        assert!((99.0..=107.0).contains(&expected), "{}", lines[400]);
        assert!((expected + error - 500.0).abs() < 1e-9, "{}", lines[400]);
        assert!(last[6].parse::<f64>().unwrap() < 1e-4, "{}", lines[400]);
    }
}
