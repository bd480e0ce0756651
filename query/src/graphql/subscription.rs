//! GraphQL subscriptions, fed by the process-wide [`Hub`](crate::hub::Hub): each subscriber
//! holds a broadcast receiver. One that falls behind receives an error with code `LAGGED` and
//! `extensions.skipped` (the number of events it missed) and then continues with the newest
//! events; it never slows the others down.

use async_graphql::{Context, ErrorExtensions, Result, Subscription};
use futures::Stream;
use tokio::sync::broadcast;

use crate::auth::Role;
use crate::graphql::{Gql, authorized};
use crate::hub::next_or_lag;
use crate::model::{Alert, LiveWindow, MonitorEvent, Probe, RuleEvent};

/// Root of subscriptions.
#[derive(Debug, Default)]
pub struct SubscriptionRoot;

fn live<T, U, F>(receiver: broadcast::Receiver<T>, pick: F) -> impl Stream<Item = Result<U>>
where
    T: Clone + Send + 'static,
    U: Send + 'static,
    F: Fn(&T) -> Option<U> + Send + Sync + 'static,
{
    metrics::gauge!("vigil_query_subscribers").increment(1.0);
    let guard = SubscriberGuard;
    futures::stream::unfold(
        (receiver, pick, guard),
        |(mut receiver, pick, guard)| async move {
            loop {
                match next_or_lag(&mut receiver).await {
                    Ok(Some(item)) => {
                        if let Some(out) = pick(&item) {
                            return Some((Ok(out), (receiver, pick, guard)));
                        }
                    }
                    Ok(None) => return None,
                    Err(skipped) => {
                        let error = async_graphql::Error::new(format!(
                            "subscriber lagged behind; {skipped} events were skipped"
                        ))
                        .extend_with(|_, ext| {
                            ext.set("code", "LAGGED");
                            ext.set("skipped", skipped);
                        });
                        return Some((Err(error), (receiver, pick, guard)));
                    }
                }
            }
        },
    )
}

/// Decrements the subscriber gauge when a subscription stream is dropped.
struct SubscriberGuard;

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        metrics::gauge!("vigil_query_subscribers").decrement(1.0);
    }
}

#[Subscription]
impl SubscriptionRoot {
    /// Windows as the processor closes them (one per monitor and region), optionally only for
    /// one monitor or for monitors with a tag.
    async fn window_closed(
        &self,
        ctx: &Context<'_>,
        monitor_id: Option<String>,
        tag: Option<String>,
    ) -> Result<impl Stream<Item = Result<LiveWindow>>> {
        let service = authorized(ctx, Role::Viewer)?;
        let view = service.view().clone();
        Ok(live(service.hub().windows.subscribe(), move |w| {
            let monitor_ok = monitor_id.as_ref().is_none_or(|id| *id == w.monitor_id);
            let tag_ok = tag.as_ref().is_none_or(|t| {
                view.get(&w.monitor_id)
                    .is_some_and(|spec| spec.tags.contains(t))
            });
            (monitor_ok && tag_ok).then(|| LiveWindow::from(w.as_ref()))
        }))
    }

    /// Raw check results as they are produced, optionally for one monitor.
    async fn probe_completed(
        &self,
        ctx: &Context<'_>,
        monitor_id: Option<String>,
    ) -> Result<impl Stream<Item = Result<Probe>>> {
        let service = authorized(ctx, Role::Viewer)?;
        Ok(live(service.hub().probes.subscribe(), move |p| {
            monitor_id
                .as_ref()
                .is_none_or(|id| *id == p.monitor_id)
                .then(|| Probe::from(p.as_ref()))
        }))
    }

    /// Alert transitions as the processor writes them, optionally only of one monitor, one
    /// rule or one severity (`info`, `warning`, `critical`; code `BAD_REQUEST` otherwise).
    async fn alert_changed(
        &self,
        ctx: &Context<'_>,
        monitor_id: Option<String>,
        rule_id: Option<String>,
        severity: Option<String>,
    ) -> Result<impl Stream<Item = Result<Alert>>> {
        let service = authorized(ctx, Role::Viewer)?;
        let severity = severity
            .as_deref()
            .map(crate::params::severity)
            .transpose()
            .gql()?;
        Ok(live(service.hub().alerts.subscribe(), move |a| {
            let wanted = monitor_id.as_ref().is_none_or(|id| *id == a.monitor_id)
                && rule_id.as_ref().is_none_or(|id| *id == a.rule_id)
                && severity.is_none_or(|s| s == a.severity);
            wanted.then(|| <Alert as From<&vigil_schema::AlertTransition>>::from(a.as_ref()))
        }))
    }

    /// Monitors created, updated or deleted.
    async fn monitor_changed(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<MonitorEvent>>> {
        let service = authorized(ctx, Role::Viewer)?;
        let secrets = crate::graphql::can_see_secrets(ctx);
        Ok(live(service.hub().monitors.subscribe(), move |c| {
            let mut event = MonitorEvent::from(c);
            if !secrets {
                event.monitor = event.monitor.map(crate::model::Monitor::redacted);
            }
            Some(event)
        }))
    }

    /// Alert rules created, updated or deleted.
    async fn rule_changed(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<RuleEvent>>> {
        let service = authorized(ctx, Role::Viewer)?;
        Ok(live(service.hub().rules.subscribe(), |c| {
            Some(RuleEvent::from(c))
        }))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_lagging_subscriber_gets_a_lagged_error_then_the_newest_events() {
        let (tx, rx) = broadcast::channel(2);
        let stream = live(rx, |v: &u32| v.is_multiple_of(2).then_some(*v));
        for v in 1..=6 {
            tx.send(v).unwrap();
        }
        drop(tx);
        let items: Vec<Result<u32>> = stream.collect().await;
        let error = items[0].as_ref().unwrap_err();
        assert_eq!(
            error.message,
            "subscriber lagged behind; 4 events were skipped"
        );
        let extensions = serde_json::to_value(error.extensions.as_ref().unwrap()).unwrap();
        assert_eq!(
            extensions,
            serde_json::json!({"code": "LAGGED", "skipped": 4})
        );
        // 5 is filtered out, 6 delivered, then the closed channel ends the stream.
        let rest: Vec<u32> = items[1..].iter().map(|r| *r.as_ref().unwrap()).collect();
        assert_eq!(rest, [6]);
    }
}
