//! The console channel: the title and one line per alert, on the notifier's standard output
//! (development and the all-in-one mode).

use vigil_schema::ChannelSpec;

use super::{Context, text, title};
use crate::group::Notification;
use crate::template::Escape;

/// The text written for a notification.
pub fn line(spec: &ChannelSpec, n: &Notification, ctx: &Context<'_>) -> String {
    let count = n.alerts.len();
    let mut out = format!(
        "[{}] {}\n",
        n.channel_id,
        title(spec, n, ctx, Escape::Plain)
    );
    for alert in &n.alerts {
        out.push_str("  - ");
        out.push_str(&text(spec, alert, count, ctx, Escape::Plain).replace('\n', "\n    "));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::channel::fixture::{channel, context, notification, secrets};

    #[test]
    fn title_and_one_line_per_alert() {
        let s = secrets();
        let spec = channel(json!({"id": "out", "kind": {"console": {}},
            "text": "{{monitor}} {{state}}\n{{summary}}"}));
        let mut n = notification("out");
        let mut second = n.alerts[0].clone();
        second.transition.monitor_id = "cart-api".into();
        n.alerts.push(second);
        assert_eq!(
            line(&spec, &n, &context(&s)),
            "[out] [FIRING:2] checkout-p99 on checkout-api\n\
             \x20 - checkout-api firing\n    p99 of checkout-api is 950ms (> 800ms)\n\
             \x20 - cart-api firing\n    p99 of checkout-api is 950ms (> 800ms)\n"
        );
    }
}
