//! The ICMP check (`icmp://host?count=N`): N echo requests, one after another, each waiting
//! up to the monitor's timeout divided by N.
//!
//! Sockets: an unprivileged ICMP datagram socket where the kernel allows it
//! (`net.ipv4.ping_group_range` holds the process's group), else a raw socket (root or
//! `CAP_NET_RAW`); when neither opens, every ICMP check fails with outcome `blocked` and says
//! which setting to change. One socket per address family serves every check of the runner.
//!
//! What conditions see: `[CONNECTED]` (at least one reply), `[IP]`, `[RESPONSE_TIME]` (the
//! whole check), and `[BODY]` as JSON: `sent`, `received`, `loss` (0 to 1), `rtt_min_ms`,
//! `rtt_avg_ms`, `rtt_max_ms` (absent without a reply). The average round trip is the check's
//! first-byte time. Without assertions, the check passes when one reply came back.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence};
use url::Url;
use vigil_schema::{IcmpTarget, Outcome};

use super::egress::{Egress, Refused, Timing, micros};

/// The runner's ICMP sockets, opened at the first check of each address family.
#[derive(Default)]
pub(crate) struct Pingers {
    v4: OnceLock<Result<Client, String>>,
    v6: OnceLock<Result<Client, String>>,
    /// The next echo identifier: taken in turn, so no two pings in flight share one (replies
    /// are matched by identifier and sequence) until 65,536 checks are in flight.
    next_ident: std::sync::atomic::AtomicU16,
}

impl std::fmt::Debug for Pingers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pingers").finish_non_exhaustive()
    }
}

/// Opens an ICMP socket: a datagram one, else a raw one.
fn open(kind: ICMP) -> Result<Client, String> {
    let config = |hint| Config::builder().kind(kind).sock_type_hint(hint).build();
    Client::new(&config(socket2::Type::DGRAM)).or_else(|dgram| {
        Client::new(&config(socket2::Type::RAW)).map_err(|raw| {
            format!(
                "ICMP is not permitted on this runner (datagram socket: {dgram}; raw socket: \
                 {raw}); let its group send pings (sysctl net.ipv4.ping_group_range) or grant \
                 it CAP_NET_RAW"
            )
        })
    })
}

/// What a run of echo requests saw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Echoes {
    pub(crate) ip: IpAddr,
    pub(crate) sent: u8,
    /// Round trips of the replies received.
    pub(crate) rtts: Vec<Duration>,
}

impl Echoes {
    /// The `[BODY]` of the check.
    pub(crate) fn describe(&self) -> serde_json::Value {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let received = self.rtts.len();
        let mut body = serde_json::json!({
            "sent": self.sent,
            "received": received,
            "loss": 1.0 - received as f64 / f64::from(self.sent.max(1)),
        });
        if let (Some(min), Some(max), Some(obj)) = (
            self.rtts.iter().min(),
            self.rtts.iter().max(),
            body.as_object_mut(),
        ) {
            let avg = self.rtts.iter().map(|d| ms(*d)).sum::<f64>() / received as f64;
            obj.insert("rtt_min_ms".into(), ms(*min).into());
            obj.insert("rtt_avg_ms".into(), avg.into());
            obj.insert("rtt_max_ms".into(), ms(*max).into());
        }
        body
    }

    /// The average round trip, µs.
    pub(crate) fn average_us(&self) -> Option<u64> {
        let n = u32::try_from(self.rtts.len()).ok().filter(|&n| n > 0)?;
        Some(micros(self.rtts.iter().sum::<Duration>() / n))
    }
}

impl Pingers {
    fn client(&self, ip: IpAddr) -> Result<&Client, Refused> {
        let (cell, kind) = match ip {
            IpAddr::V4(_) => (&self.v4, ICMP::V4),
            IpAddr::V6(_) => (&self.v6, ICMP::V6),
        };
        cell.get_or_init(|| open(kind))
            .as_ref()
            .map_err(|e| Refused::new(Outcome::Blocked, e.clone()))
    }

    /// Resolves and vets `target`'s host (as port 0: an allow-list entry with a port does not
    /// cover ICMP unless the port is 0), then sends the echo requests.
    pub(crate) async fn ping(
        &self,
        egress: &Egress,
        target: &IcmpTarget,
        timeout: Duration,
        timing: &mut Timing,
    ) -> Result<Echoes, Refused> {
        let host = match target.host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{}]", target.host),
            Err(_) => target.host.clone(),
        };
        let url = Url::parse(&format!("http://{host}:0/"))
            .map_err(|e| Refused::new(Outcome::InvalidUrl, format!("url: host {host:?}: {e}")))?;
        let addrs = egress.vet(&url, timing).await?;
        let ip = addrs
            .first()
            .map(|a| a.ip())
            .ok_or_else(|| Refused::new(Outcome::Dns, format!("{host} has no address")))?;
        let client = self.client(ip)?;
        let ident = PingIdentifier(
            self.next_ident
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let mut pinger = client.pinger(ip, ident).await;
        let each = timeout / u32::from(target.count.max(1));
        pinger.timeout(each);
        let payload = [0u8; 56];
        let mut rtts = Vec::with_capacity(usize::from(target.count));
        for seq in 0..target.count {
            match pinger.ping(PingSequence(u16::from(seq)), &payload).await {
                Ok((_, rtt)) => rtts.push(rtt),
                Err(surge_ping::SurgeError::Timeout { .. }) => {}
                Err(e) => {
                    return Err(Refused::new(
                        Outcome::Connect,
                        format!("cannot ping {ip}: {e}"),
                    ));
                }
            }
        }
        Ok(Echoes {
            ip,
            sent: target.count,
            rtts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_round_trips_and_loss() {
        let e = Echoes {
            ip: IpAddr::from([127, 0, 0, 1]),
            sent: 4,
            rtts: vec![
                Duration::from_millis(2),
                Duration::from_millis(4),
                Duration::from_millis(6),
            ],
        };
        assert_eq!(
            e.describe(),
            serde_json::json!({"sent": 4, "received": 3, "loss": 0.25,
                "rtt_min_ms": 2.0, "rtt_avg_ms": 4.0, "rtt_max_ms": 6.0})
        );
        assert_eq!(e.average_us(), Some(4000));
        let lost = Echoes {
            rtts: Vec::new(),
            ..e
        };
        assert_eq!(
            lost.describe(),
            serde_json::json!({"sent": 4, "received": 0, "loss": 1.0})
        );
        assert_eq!(lost.average_us(), None);
    }
}
