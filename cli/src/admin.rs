//! `rmq route`, `rmq lag`, `rmq topics` and `rmq cluster`: reads of the name server and
//! brokers.

use super::*;

pub(crate) async fn route(cluster: &Cluster, topic: &str) -> Result<(), Failure> {
    let client = client_config(cluster, "route")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    instance
        .update_topic_route(topic)
        .await
        .map_err(|e| preflight::namesrv_failure(&instance, &e))?;
    let r = instance
        .topic_route(topic)
        .ok_or_else(|| Failure(1, format!("no route for topic {topic}")))?;
    out(&serde_json::to_string_pretty(&*r).map_err(fail)?)?;
    instance.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

pub(crate) async fn lag(cluster: &Cluster, group: &str, topic: &str) -> Result<(), Failure> {
    let client = client_config(cluster, "lag")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    let mut total = 0i64;
    // The topic must exist; its retry topic exists only once the group has consumed.
    instance
        .update_topic_route(topic)
        .await
        .map_err(|e| preflight::namesrv_failure(&instance, &e))?;
    let mut topics = vec![topic.to_owned()];
    let retry = rmq_client_core::namespace::retry_topic(group);
    match instance.update_topic_route(&retry).await {
        Ok(_) => topics.push(retry),
        Err(rmq_client_core::ClientError::TopicRouteNotFound { .. }) => {}
        Err(e) => return Err(preflight::namesrv_failure(&instance, &e)),
    }
    out(&format!(
        "{:<40} {:<16} {:>6} {:>14} {:>14} {:>10}",
        "TOPIC", "BROKER", "QUEUE", "MAX_OFFSET", "COMMITTED", "LAG"
    ))?;
    for t in topics {
        let queues: Vec<MessageQueue> = instance.subscribe_queues(&t);
        for mq in queues {
            let (max, committed) = group_view::queue_offsets(&instance, group, &mq)
                .await
                .map_err(|e| Failure(1, e))?;
            let lag = max - committed.unwrap_or(0);
            total += lag;
            out(&format!(
                "{:<40} {:<16} {:>6} {:>14} {:>14} {:>10}",
                mq.topic,
                mq.broker_name,
                mq.queue_id,
                max,
                committed
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                lag
            ))?;
        }
    }
    out(&format!("total lag: {total}"))?;
    instance.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

pub(crate) async fn topics(cluster: &Cluster, format: Format) -> Result<(), Failure> {
    let client = client_config(cluster, "topics")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    let topics = instance
        .all_topics()
        .await
        .map_err(|e| preflight::namesrv_failure(&instance, &e))?;
    match format {
        Format::Json | Format::Summary => out(&serde_json::to_string(&topics).map_err(fail)?)?,
        Format::Text => {
            for t in &topics {
                out(t)?;
            }
        }
    }
    instance.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

pub(crate) async fn cluster_info(cluster: &Cluster, format: Format) -> Result<(), Failure> {
    let client = client_config(cluster, "cluster")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    let info = instance
        .broker_cluster_info()
        .await
        .map_err(|e| preflight::namesrv_failure(&instance, &e))?;
    match format {
        Format::Json | Format::Summary => out(&serde_json::to_string(&info).map_err(fail)?)?,
        Format::Text => {
            out(&format!(
                "{:<24} {:<24} {:>4} {:<24}",
                "CLUSTER", "BROKER", "ID", "ADDRESS"
            ))?;
            for (cluster_name, brokers) in &info.cluster_addr_table {
                for name in brokers {
                    let Some(data) = info.broker_addr_table.get(name) else {
                        out(&format!("{cluster_name:<24} {name:<24}    - (no address)"))?;
                        continue;
                    };
                    for (id, addr) in &data.broker_addrs {
                        out(&format!("{cluster_name:<24} {name:<24} {id:>4} {addr:<24}"))?;
                    }
                }
            }
        }
    }
    instance.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
