//! CHECK_CLIENT_CONFIG (46) at consumer start (Java `MQClientInstance.checkClientInBroker`).

use super::*;
use crate::filter::{ExpressionType, SubscriptionData};
use crate::header::CheckClientRequestBody;

impl ClientInstance {
    /// Asks every master broker of each subscribed topic whether it can serve each non-TAG
    /// (SQL92) subscription of `group`; TAG subscriptions need no check and are skipped.
    /// Call it after the routes are loaded and before the first heartbeat, as Java's
    /// `start()` does. Java asks one broker of the topic; rmq asks them all, so a broker
    /// without the property filter is found at start rather than by its pulls failing.
    /// A topic without a route yet is skipped (its pulls will say so).
    ///
    /// # Errors
    /// [`ClientError::SubscriptionRefused`] naming the broker, topic and expression;
    /// transport errors.
    pub async fn check_client_in_broker(
        &self,
        group: &str,
        subscriptions: &[SubscriptionData],
    ) -> Result<(), ClientError> {
        let timeout = self.inner.config.mq_client_api_timeout;
        for sub in subscriptions {
            if sub.expression_type == ExpressionType::Tag {
                continue;
            }
            let Some(route) = self.topic_route(&sub.topic) else {
                continue;
            };
            let body = CheckClientRequestBody {
                client_id: self.inner.client_id.clone(),
                group: group.to_owned(),
                namespace: None,
                subscription_data: sub.clone(),
            };
            for addr in route.broker_datas.iter().filter_map(|b| b.master_addr()) {
                self.inner
                    .api
                    .check_client_config(addr, &body, timeout)
                    .await?;
            }
        }
        Ok(())
    }
}
